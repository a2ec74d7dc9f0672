package budget

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// countingStatus counts the store reads and fails the one numbered failAt
// (from 1; 0 never).
type countingStatus struct {
	Store
	calls, failAt int
	sizes         []int
}

func (s *countingStatus) Status(ctx context.Context, bs []Budget) ([]Status, error) {
	s.calls++
	s.sizes = append(s.sizes, len(bs))
	if s.calls == s.failAt {
		return nil, ErrUnavailable
	}
	return s.Store.Status(ctx, bs)
}

// TestCollectorReadsThousandsOfBudgetsInChunks: a store read covers at most
// statusChunk budgets, every budget still gets its gauges, and one failed
// chunk withholds every budget's levels rather than some.
func TestCollectorReadsThousandsOfBudgetsInChunks(t *testing.T) {
	clock := newFakeClock(t0)
	s := boltReplicas(t, 1, clock)[0]
	var all []Budget
	for i := range 2*statusChunk + 1 {
		all = append(all, bud(ScopeService, fmt.Sprintf("svc-%04d", i), Daily, money.USD(10), true))
	}
	last := all[len(all)-1]
	mustSettle(t, s, mustReserve(t, s, hold("a", money.USD(3), time.Minute, last)), money.USD(2))

	gather := func(cs *countingStatus) map[string]*dto.MetricFamily {
		t.Helper()
		reg := prometheus.NewRegistry()
		reg.MustRegister(NewCollector(cs, func() []Budget { return all }, time.Second))
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*dto.MetricFamily{}
		for _, mf := range mfs {
			out[mf.GetName()] = mf
		}
		return out
	}

	cs := &countingStatus{Store: s}
	mfs := gather(cs)
	if cs.calls != 3 || cs.sizes[0] != statusChunk || cs.sizes[2] != 1 {
		t.Errorf("%d store reads of %v budgets, want 3 of at most %d", cs.calls, cs.sizes, statusChunk)
	}
	for _, name := range []string{"clade_gateway_budget_limit_usd", "clade_gateway_budget_spent_usd", "clade_gateway_budget_reserved_usd"} {
		if n := len(mfs[name].GetMetric()); n != len(all) {
			t.Errorf("%s: %d series, want %d", name, n, len(all))
		}
	}
	var spent float64
	for _, m := range mfs["clade_gateway_budget_spent_usd"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "name" && lp.GetValue() == last.Name {
				spent = m.GetGauge().GetValue()
			}
		}
	}
	if spent != 2 {
		t.Errorf("%s spent %v, want 2", last.Name, spent)
	}

	mfs = gather(&countingStatus{Store: s, failAt: 2})
	if _, ok := mfs["clade_gateway_budget_spent_usd"]; ok {
		t.Error("a failed chunk still exported spend for the other budgets")
	}
	if n := len(mfs["clade_gateway_budget_limit_usd"].GetMetric()); n != len(all) {
		t.Errorf("limits: %d series, want %d", n, len(all))
	}
	if v := mfs["clade_gateway_budget_scrape_errors_total"].GetMetric()[0].GetCounter().GetValue(); v != 1 {
		t.Errorf("scrape errors %v, want 1", v)
	}
}
