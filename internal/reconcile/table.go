package reconcile

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the report for people: per day and workspace the two
// figures and their difference, and the findings below.
func WriteTable(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Reconciliation %s to %s (UTC)\t\t\t\t\t\t\n", r.From, r.To)
	fmt.Fprintln(tw, "date\tworkspace\tgateway USD\tAnthropic USD\tdrift USD\tstatus\t")
	byDay := map[[2]string][]Finding{}
	for _, f := range r.Findings {
		k := [2]string{f.Date, f.Workspace}
		byDay[k] = append(byDay[k], f)
	}
	for _, d := range r.Days {
		status := "final"
		if !d.Final {
			status = "open (not final)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", d.Date, d.Workspace, d.GatewayUSD, d.AnthropicUSD, d.DriftUSD, status)
		for _, f := range byDay[[2]string{d.Date, d.Workspace}] {
			what := f.Kind
			if f.Key != "" {
				what += " key=" + f.Key
			}
			if f.Model != "" {
				what += " model=" + f.Model
			}
			note := "within tolerance"
			if f.Exceeds {
				note = "EXCEEDS tolerance"
			}
			if f.Discount != "" {
				note += "; explained by pricing.discount " + f.Discount
			}
			if len(f.Hours) > 0 {
				note += "; hours " + strings.Join(f.Hours, ",")
			}
			fmt.Fprintf(tw, "  ↳ %s\t\t%s\t%s\t%s\t%s\t\n", what, f.GatewayUSD, f.AnthropicUSD, f.DriftUSD, note)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case r.Failed():
		_, err := fmt.Fprintln(w, "\nResult: findings beyond tolerance (see docs/reconcile.md).")
		return err
	case len(r.Findings) > 0:
		_, err := fmt.Fprintln(w, "\nResult: within tolerance.")
		return err
	}
	_, err := fmt.Fprintln(w, "\nResult: the gateway's figures match Anthropic's.")
	return err
}
