package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// Every round visits every target once, and over the default three rounds
// no target runs behind the same neighbour every time (a rotation did
// that, for every target).
func TestRoundOrderVariesNeighbours(t *testing.T) {
	for n := 2; n <= 6; n++ {
		before := map[int][]int{} // target -> its predecessor in each round (-1: first)
		for round := range 3 {
			order := roundOrder(n, round)
			if got := slices.Sorted(slices.Values(order)); !slices.Equal(got, seq(n)) {
				t.Fatalf("n=%d round %d: order %v is not a permutation", n, round, order)
			}
			for i, tgt := range order {
				prev := -1
				if i > 0 {
					prev = order[i-1]
				}
				before[tgt] = append(before[tgt], prev)
			}
		}
		if n < 4 {
			continue // too few targets for every one to change neighbours
		}
		for tgt, prevs := range before {
			if prevs[0] >= 0 && prevs[0] == prevs[1] && prevs[1] == prevs[2] {
				t.Errorf("n=%d: target %d follows %d in every round", n, tgt, prevs[0])
			}
		}
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// A run of some targets (here bare and gw-grants, no gw-embedded) still
// gets the targets' verdicts, for the gateways it ran.
func TestTargetsCheckTheGatewaysThatRan(t *testing.T) {
	r := newReport(options{rate: 1000}, []phase{{name: "max", closed: true}, {name: "lat", rate: 1000}})
	for _, mode := range modes {
		for name, cpu := range map[string]time.Duration{"bare": 200 * time.Millisecond, "gw-grants": 400 * time.Millisecond} {
			m := r.get("max", mode, name)
			m.ok, m.cpu = 1000, cpu // 200 µs and 400 µs per request: 2× bare
			l := r.get("lat", mode, name)
			l.ok, l.lat = 1, []time.Duration{50 * time.Millisecond}
		}
	}
	var out strings.Builder
	r.targets(&out)
	got := out.String()
	for _, want := range []string{
		"MISS  json gw-grants CPU/request 400 µs = 2.00× bare",
		"PASS  sse gw-grants added p50 over bare +0.00 ms",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("targets without gw-embedded:\n%s\nwant a line with %q", got, want)
		}
	}
	if strings.Contains(got, "gw-embedded") || strings.Contains(got, "gw-redis ") {
		t.Errorf("targets name gateways that did not run:\n%s", got)
	}
}

// -phases slow is the closed loop at -slow-conc and an open loop per
// -slow-rates, all with the slow upstream; a typo is refused, not ignored.
func TestPhaseListSlow(t *testing.T) {
	o := options{phases: "slow", slowConc: 16, slowRates: "100, 300", slowTTFB: 50 * time.Millisecond}
	ps, err := o.phaseList()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		if !p.slow || p.ttfb != 50*time.Millisecond {
			t.Errorf("phase %+v is not a slow phase with the 50ms upstream", p)
		}
		got = append(got, p.name)
	}
	if want := []string{"c16", "r100", "r300"}; !slices.Equal(got, want) {
		t.Errorf("phases %v, want %v", got, want)
	}
	if ps[0].closed != true || ps[0].concJSON != 16 || ps[2].closed || ps[2].rate != 300 {
		t.Errorf("phases %+v", ps)
	}
	for _, bad := range []string{"max,slwo", "", "slow"} {
		o := options{phases: bad, slowRates: "fast"}
		if _, err := o.phaseList(); err == nil {
			t.Errorf("-phases %q -slow-rates fast accepted", bad)
		}
	}
}
