// Package ledger breaks one settled charge into the spend ledger's lines:
// per UTC hour, workspace, workspace key, model and cost component, tokens
// and nano-USD. The budget store keeps the lines, written by the settlement
// that charges the budgets; reconciliation reads them back.
package ledger

import (
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// Estimate is the component of a charge made by estimate, with no usage
// to break it down.
const Estimate = "estimate"

// maxModel bounds the model name kept, as the spend log does.
const maxModel = 80

// Charge is one settled charge.
type Charge struct {
	At        time.Time // when the request was admitted: its hour
	Workspace string
	Key       string // the workspace key's name in the policy
	Model     string // as the response reported it, else as requested
	Cost      pricing.Cost
	// Estimated reports a charge made by estimate: Cost has only a Total.
	Estimated bool
}

// Lines returns c's ledger lines. Their nano-USD add up to Cost.Total
// exactly, as budgets are charged: each component is rounded up on its own
// (pricing.Cost), so the excess, under one nano-USD per component, is
// taken back from the largest components.
func Lines(c Charge) []budget.LedgerLine {
	hour := c.At.UTC().Truncate(time.Hour)
	model := c.Model
	if len(model) > maxModel {
		model = model[:maxModel]
	}
	line := func(comp string, tokens int64, n money.Nanos) budget.LedgerLine {
		return budget.LedgerLine{Hour: hour, Workspace: c.Workspace, Key: c.Key, Model: model,
			Component: comp, Tokens: tokens, Nanos: n}
	}
	if c.Estimated {
		if c.Cost.Total == 0 {
			return nil
		}
		return []budget.LedgerLine{line(Estimate, 0, c.Cost.Total)}
	}
	comps := c.Cost.Components
	var sum money.Nanos
	for _, v := range comps {
		sum += v
	}
	for excess := sum - c.Cost.Total; excess > 0; {
		big := 0
		for i := range comps {
			if comps[i] > comps[big] {
				big = i
			}
		}
		take := min(excess, comps[big])
		comps[big] -= take
		excess -= take
	}
	var out []budget.LedgerLine
	for i := range pricing.NumComponents {
		if comps[i] == 0 && c.Cost.Tokens[i] == 0 {
			continue
		}
		out = append(out, line(pricing.Component(i).String(), c.Cost.Tokens[i], comps[i]))
	}
	if sum < c.Cost.Total {
		// Never expected (each component is rounded up), but the lines
		// must add up to what the budgets are charged.
		out = append(out, line(Estimate, 0, c.Cost.Total-sum))
	}
	return out
}
