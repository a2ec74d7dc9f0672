package budgetgauge

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/promtable"
)

// list is a fixed set of budgets, as a loaded policy is.
type list struct{ bs []budget.Budget }

func (l *list) AllBudgets() []budget.Budget { return append([]budget.Budget(nil), l.bs...) }

func fixed(l *list) func() Budgets { return func() Budgets { return l } }

func bud(scope budget.Scope, name string, p budget.Period, limit money.Nanos, alertAt ...float64) budget.Budget {
	return budget.Budget{Scope: scope, Name: name, ID: string(p), Period: p, Limit: limit, Enforce: true, AlertAt: alertAt}
}

func openStore(t *testing.T) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "budgets.db"), storeopts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// spend settles actual against bs and leaves a live hold of held.
func spend(t *testing.T, s budget.Store, id string, actual, held money.Nanos, bs ...budget.Budget) {
	t.Helper()
	ctx := context.Background()
	r, err := s.Reserve(ctx, budget.Hold{RequestID: id + "-settled", Budgets: bs, Amount: actual, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Settle(ctx, r, actual); err != nil {
		t.Fatal(err)
	}
	if held > 0 {
		if _, err := s.Reserve(ctx, budget.Hold{RequestID: id + "-held", Budgets: bs, Amount: held, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
}

// failingStatus is a store whose reads fail.
type failingStatus struct{}

func (failingStatus) Status(context.Context, []budget.Budget) ([]budget.Status, error) {
	return nil, budget.ErrUnavailable
}

const wantUp = `
# HELP clade_gateway_budget_alert_threshold The lowest alert_at fraction of each budget that has one. Bounded by the policy's budgets.
# TYPE clade_gateway_budget_alert_threshold gauge
clade_gateway_budget_alert_threshold{id="daily",name="search",period="daily",scope="service"} 0.5
# HELP clade_gateway_budget_limit_usd Budget limit in USD. Bounded by the policy's budgets.
# TYPE clade_gateway_budget_limit_usd gauge
clade_gateway_budget_limit_usd{id="daily",name="search",period="daily",scope="service"} 10
clade_gateway_budget_limit_usd{id="monthly",name="core",period="monthly",scope="team"} 50
# HELP clade_gateway_budget_reserved_usd Live holds against the budget's current window, in USD. Bounded by the policy's budgets.
# TYPE clade_gateway_budget_reserved_usd gauge
clade_gateway_budget_reserved_usd{id="daily",name="search",period="daily",scope="service"} 0.5
clade_gateway_budget_reserved_usd{id="monthly",name="core",period="monthly",scope="team"} 0.5
# HELP clade_gateway_budget_scrape_errors_total Scrapes that could not read budget levels from the store. No labels.
# TYPE clade_gateway_budget_scrape_errors_total counter
clade_gateway_budget_scrape_errors_total 0
# HELP clade_gateway_budget_spent_usd Spend committed in the budget's current window, in USD. Bounded by the policy's budgets.
# TYPE clade_gateway_budget_spent_usd gauge
clade_gateway_budget_spent_usd{id="daily",name="search",period="daily",scope="service"} 2
clade_gateway_budget_spent_usd{id="monthly",name="core",period="monthly",scope="team"} 2
`

// TestExportsStoreLevels: limits and thresholds from the budgets, levels
// from the store, the same whether a promtable.Registry gathers the
// collector or a plain registry collects it; a budget listed twice is
// exported once.
func TestExportsStoreLevels(t *testing.T) {
	s := openStore(t)
	svc := bud(budget.ScopeService, "search", budget.Daily, money.USD(10), 0.8, 0.5)
	team := bud(budget.ScopeTeam, "core", budget.Monthly, money.USD(50))
	spend(t, s, "a", money.USD(2), money.USD(1)/2, svc, team)
	bs := fixed(&list{[]budget.Budget{team, svc, svc}})

	for name, reg := range map[string]interface {
		prometheus.Registerer
		prometheus.Gatherer
	}{"promtable": promtable.NewRegistry(), "plain": prometheus.NewRegistry()} {
		reg.MustRegister(New(s, bs, time.Second))
		if err := testutil.GatherAndCompare(reg, strings.NewReader(wantUp)); err != nil {
			t.Errorf("%s registry: %v", name, err)
		}
	}
}

// TestStoreDown: when the store cannot be read, the limits and thresholds
// are exported with a scrape error, not levels that would read as zero
// spend.
func TestStoreDown(t *testing.T) {
	svc := bud(budget.ScopeService, "search", budget.Daily, money.USD(10), 0.5)
	reg := promtable.NewRegistry()
	reg.MustRegister(New(failingStatus{}, fixed(&list{[]budget.Budget{svc}}), time.Second))
	const want = `
# HELP clade_gateway_budget_alert_threshold The lowest alert_at fraction of each budget that has one. Bounded by the policy's budgets.
# TYPE clade_gateway_budget_alert_threshold gauge
clade_gateway_budget_alert_threshold{id="daily",name="search",period="daily",scope="service"} 0.5
# HELP clade_gateway_budget_limit_usd Budget limit in USD. Bounded by the policy's budgets.
# TYPE clade_gateway_budget_limit_usd gauge
clade_gateway_budget_limit_usd{id="daily",name="search",period="daily",scope="service"} 10
# HELP clade_gateway_budget_scrape_errors_total Scrapes that could not read budget levels from the store. No labels.
# TYPE clade_gateway_budget_scrape_errors_total counter
clade_gateway_budget_scrape_errors_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestFollowsReloads: a new set of budgets is exported from the next
// scrape; no policy exports only the error counter.
func TestFollowsReloads(t *testing.T) {
	s := openStore(t)
	cur := &list{[]budget.Budget{bud(budget.ScopeService, "a", budget.Daily, money.USD(1))}}
	c := New(s, func() Budgets {
		if cur == nil {
			return nil
		}
		return cur
	}, time.Second)
	limits := func() []string {
		t.Helper()
		fs, err := c.Families()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range fs {
			if f.Name != limitName {
				continue
			}
			for _, s := range f.Series {
				out = append(out, fmt.Sprintf("%v", s.Value))
			}
		}
		return out
	}
	if got := fmt.Sprint(limits()); got != "[1]" {
		t.Errorf("limits %s, want [1]", got)
	}
	cur = &list{[]budget.Budget{bud(budget.ScopeService, "a", budget.Daily, money.USD(3)), bud(budget.ScopeService, "b", budget.Daily, money.USD(2))}}
	if got := fmt.Sprint(limits()); got != "[3 2]" {
		t.Errorf("after a reload: limits %s, want [3 2] (a, b)", got)
	}
	cur = nil
	fs, err := c.Families()
	if err != nil || len(fs) != 1 || fs[0].Name != errorsName {
		t.Errorf("without a policy: %v families (%v), want the error counter alone", len(fs), err)
	}
}

func labelOf(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// countingStatus counts the store reads and fails the one numbered failAt
// (from 1; 0 never).
type countingStatus struct {
	Store
	calls, failAt int
	sizes         []int
}

func (s *countingStatus) Status(ctx context.Context, bs []budget.Budget) ([]budget.Status, error) {
	s.calls++
	s.sizes = append(s.sizes, len(bs))
	if s.calls == s.failAt {
		return nil, budget.ErrUnavailable
	}
	return s.Store.Status(ctx, bs)
}

// TestReadsThousandsOfBudgetsInChunks: a store read covers at most
// statusChunk budgets, every budget still gets its gauges, and one failed
// chunk withholds every budget's levels rather than some.
func TestReadsThousandsOfBudgetsInChunks(t *testing.T) {
	s := openStore(t)
	var all []budget.Budget
	for i := range 2*statusChunk + 1 {
		all = append(all, bud(budget.ScopeService, fmt.Sprintf("svc-%04d", i), budget.Daily, money.USD(10)))
	}
	last := all[len(all)-1]
	spend(t, s, "a", money.USD(2), 0, last)
	bs := fixed(&list{all})

	gather := func(cs *countingStatus) map[string]*dto.MetricFamily {
		t.Helper()
		reg := promtable.NewRegistry()
		reg.MustRegister(New(cs, bs, time.Second))
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
	for _, name := range []string{limitName, spentName, reservedName} {
		if n := len(mfs[name].GetMetric()); n != len(all) {
			t.Errorf("%s: %d series, want %d", name, n, len(all))
		}
	}
	var spent float64
	for _, m := range mfs[spentName].GetMetric() {
		if labelOf(m, "name") == last.Name {
			spent = m.GetGauge().GetValue()
		}
	}
	if spent != 2 {
		t.Errorf("%s spent %v, want 2", last.Name, spent)
	}

	mfs = gather(&countingStatus{Store: s, failAt: 2})
	if _, ok := mfs[spentName]; ok {
		t.Error("a failed chunk still exported spend for the other budgets")
	}
	if n := len(mfs[limitName].GetMetric()); n != len(all) {
		t.Errorf("limits: %d series, want %d", n, len(all))
	}
	if v := mfs[errorsName].GetMetric()[0].GetCounter().GetValue(); v != 1 {
		t.Errorf("scrape errors %v, want 1", v)
	}
}
