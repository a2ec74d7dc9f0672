package budgetstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget/storemetrics"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

func TestStoreMetrics(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T, opts storeopts.Options) budget.Store
	}{
		{"redis", func(t *testing.T, opts storeopts.Options) budget.Store {
			opts.Prefix = redistest.Prefix(t)
			c := redistest.Client(t, redistest.SharedAddr(t))
			redistest.DropPrefix(t, c, opts.Prefix)
			s, err := NewRedis(c, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
		{"bolt", func(t *testing.T, opts storeopts.Options) budget.Store {
			s, err := OpenBolt(filepath.Join(t.TempDir(), "b.db"), opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			clock := storetest.NewClock(storetest.T0)
			reg := prometheus.NewRegistry()
			s := st.open(t, storeopts.Options{Clock: clock.Now, Registerer: reg, Timeout: storetest.Timeout})
			svc := storetest.Bud(budget.ScopeService, "m", budget.Daily, money.USD(10), true)
			team := storetest.Bud(budget.ScopeTeam, "m", budget.Monthly, money.USD(10), true)
			dry := storetest.Bud(budget.ScopeWorkspace, "m", budget.Total, money.USD(1), false)

			// An orphan held on two budgets is counted once.
			r := storetest.MustReserve(t, s, storetest.Hold("orphan", money.USD(1), time.Minute, svc, team))
			if got := gather(t, reg, "clade_gateway_holds_in_flight"); got != 1 {
				t.Errorf("holds in flight = %v, want 1", got)
			}
			clock.Add(2 * time.Minute)
			if got := gather(t, reg, "clade_gateway_holds_in_flight"); got != 0 {
				t.Errorf("holds in flight after the lease = %v, want 0", got)
			}
			storetest.WantLevel(t, s, svc, money.USD(1), 0)
			storetest.WantLevel(t, s, team, money.USD(1), 0)
			if got := gather(t, reg, "clade_gateway_orphaned_holds_total"); got != 1 {
				t.Errorf("orphans = %v, want 1", got)
			}
			storetest.MustSettle(t, s, r, money.USD(1))

			// Actual above estimate: spend+holds go from 3 to 13 against a
			// limit of 10, an overshoot of 3 on each enforced budget and
			// none on the dry run.
			r = storetest.MustReserve(t, s, storetest.Hold("big", money.USD(2), time.Minute, svc, team, dry))
			storetest.MustSettle(t, s, r, money.USD(12))
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
			storetest.MustSettle(t, s, r, money.USD(12))
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "clade_gateway_budget_overshoot_usd_total"); err != nil {
				t.Error(err)
			}
			if n := testutil.CollectAndCount(reg, "clade_gateway_store_duration_seconds"); n < 3 {
				t.Errorf("duration series = %d, want one per op used", n)
			}
			// Refusals are not errors.
			storetest.MustExceed(t, s, storetest.Hold("no", money.USD(1), time.Minute, svc))
			if got := gather(t, reg, "clade_gateway_store_errors_total"); got != 0 {
				t.Errorf("store errors after a refusal = %v, want 0", got)
			}
		})
	}
}

func TestStoreErrorsCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := OpenBolt(filepath.Join(t.TempDir(), "b.db"), storeopts.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	_, err = s.Reserve(context.Background(), storetest.Hold("x", 1, time.Minute, storetest.Bud(budget.ScopeService, "e", budget.Daily, 10, true)))
	if !errors.Is(err, budget.ErrUnavailable) {
		t.Fatalf("Reserve on a closed store = %v, want ErrUnavailable", err)
	}
	var want strings.Builder
	want.WriteString(`# HELP clade_gateway_store_errors_total Budget store operations that failed (unreachable, timed out, or lost data); refusals are not errors. Bounded by the store operations, each exported from the start.
# TYPE clade_gateway_store_errors_total counter
`)
	for _, op := range storemetrics.Ops() {
		n := 0
		if op == "reserve" {
			n = 1
		}
		fmt.Fprintf(&want, "clade_gateway_store_errors_total{op=%q} %d\n", op, n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want.String()), "clade_gateway_store_errors_total"); err != nil {
		t.Error(err)
	}
}

// TestStoreErrorsStartAtZero: before any operation, each store exports an
// error series for every operation and an overshoot series for every
// scope, at zero.
func TestStoreErrorsStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := OpenBolt(filepath.Join(t.TempDir(), "b.db"), storeopts.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := testutil.CollectAndCount(reg, "clade_gateway_store_errors_total"); n != len(storemetrics.Ops()) {
		t.Errorf("%d error series, want one per operation (%d)", n, len(storemetrics.Ops()))
	}
	if n := testutil.CollectAndCount(reg, "clade_gateway_budget_overshoot_usd_total"); n != 4 {
		t.Errorf("%d overshoot series, want one per scope (4)", n)
	}
}

// TestStoreOpsListed: every operation the stores observe is one
// storemetrics.Ops lists, so its error series exists from the start.
func TestStoreOpsListed(t *testing.T) { storetest.OpsListed(t) }

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
