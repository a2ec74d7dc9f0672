package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/money"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// StoreMetrics checks what a store reports about itself: holds in flight,
// orphans counted once however many budgets they held, overshoot by scope
// on enforced budgets only and once per settlement, a latency series per
// operation used, and refusals that are not errors. open opens a fresh
// store with opts.
func StoreMetrics(t *testing.T, open func(t *testing.T, opts storeopts.Options) budget.Store) {
	clock := NewClock(T0)
	reg := prometheus.NewRegistry()
	s := open(t, storeopts.Options{Clock: clock.Now, Registerer: reg, Timeout: Timeout})
	svc := Bud(budget.ScopeService, "m", budget.Daily, money.USD(10), true)
	team := Bud(budget.ScopeTeam, "m", budget.Monthly, money.USD(10), true)
	dry := Bud(budget.ScopeWorkspace, "m", budget.Total, money.USD(1), false)

	// An orphan held on two budgets is counted once.
	r := MustReserve(t, s, Hold("orphan", money.USD(1), time.Minute, svc, team))
	if got := gather(t, reg, "clade_gateway_holds_in_flight"); got != 1 {
		t.Errorf("holds in flight = %v, want 1", got)
	}
	clock.Add(2 * time.Minute)
	if got := gather(t, reg, "clade_gateway_holds_in_flight"); got != 0 {
		t.Errorf("holds in flight after the lease = %v, want 0", got)
	}
	WantLevel(t, s, svc, money.USD(1), 0)
	WantLevel(t, s, team, money.USD(1), 0)
	if got := gather(t, reg, "clade_gateway_orphaned_holds_total"); got != 1 {
		t.Errorf("orphans = %v, want 1", got)
	}
	MustSettle(t, s, r, money.USD(1))

	// Actual above estimate: spend+holds go from 3 to 13 against a
	// limit of 10, an overshoot of 3 on each enforced budget and
	// none on the dry run.
	r = MustReserve(t, s, Hold("big", money.USD(2), time.Minute, svc, team, dry))
	MustSettle(t, s, r, money.USD(12))
	const want = `
# HELP clade_gateway_budget_overshoot_usd_total USD by which settlements took an enforced budget's spend plus holds beyond its limit. Bounded by the 4 budget scopes, each exported from the start.
# TYPE clade_gateway_budget_overshoot_usd_total counter
clade_gateway_budget_overshoot_usd_total{scope="principal"} 0
clade_gateway_budget_overshoot_usd_total{scope="service"} 3
clade_gateway_budget_overshoot_usd_total{scope="team"} 3
clade_gateway_budget_overshoot_usd_total{scope="workspace"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "clade_gateway_budget_overshoot_usd_total"); err != nil {
		t.Error(err)
	}
	// A second settlement adds nothing.
	MustSettle(t, s, r, money.USD(12))
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "clade_gateway_budget_overshoot_usd_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "clade_gateway_store_duration_seconds"); n < 3 {
		t.Errorf("duration series = %d, want one per op used", n)
	}
	// Refusals are not errors.
	_ = MustExceed(t, s, Hold("no", money.USD(1), time.Minute, svc))
	if got := gather(t, reg, "clade_gateway_store_errors_total"); got != 0 {
		t.Errorf("store errors after a refusal = %v, want 0", got)
	}
}

// gather returns the value of a single-series gauge or counter.
func gather(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	return 0
}
