package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// diff is v less the q-quantile of ref, or blank when ref did not run.
func diff(v time.Duration, ref []time.Duration, q float64) string {
	if len(ref) == 0 {
		return ""
	}
	return sign(ms(v - percentile(ref, q)))
}

// roundDiffs are the differences of the q-th latency percentile to the
// bare proxy's, round by round. The pooled figure can be one bad moment of
// the machine during one target's segment; these show whether it was.
func roundDiffs(a, bare *acc, q float64) []float64 {
	if len(a.roundLat) != len(bare.roundLat) || len(a.roundLat) < 2 {
		return nil
	}
	d := make([]float64, len(a.roundLat))
	for i := range a.roundLat {
		d[i] = ms(percentile(a.roundLat[i], q) - percentile(bare.roundLat[i], q))
	}
	return d
}

// roundRange is the range of roundDiffs, for a table cell.
func roundRange(a, bare *acc, q float64) string {
	d := roundDiffs(a, bare, q)
	if d == nil {
		return ""
	}
	return fmt.Sprintf(" (%+.2f…%+.2f)", slices.Min(d), slices.Max(d))
}

// roundList is roundDiffs spelled out, for a target line.
func roundList(a, bare *acc, q float64) string {
	d := roundDiffs(a, bare, q)
	if d == nil {
		return ""
	}
	parts := make([]string, len(d))
	for i, x := range d {
		parts[i] = fmt.Sprintf("%+.2f", x)
	}
	return "; by round " + strings.Join(parts, ", ")
}

// spread is the range of the per-round CPU ratio to the bare proxy.
func spread(a, bare *acc) string { return spreadOf(a.roundCPU, bare.roundCPU) }

func spreadOf(a, bare []float64) string {
	if len(a) != len(bare) || len(a) < 2 {
		return ""
	}
	lo, hi := 1e18, 0.0
	for i := range a {
		x := a[i] / bare[i]
		lo, hi = min(lo, x), max(hi, x)
	}
	return fmt.Sprintf(" (%.2f–%.2f)", lo, hi)
}

func cmdBreakdown(a *acc) string {
	var parts []string
	for k, v := range a.redisCmds {
		if v > 0 {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, a.perReq(float64(v))))
		}
	}
	slices.Sort(parts)
	return fmt.Sprintf("%.2f (%s)", a.cmdsPerReq(), strings.Join(parts, ", "))
}
