package reconcile_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/clade-gateway/clade-gateway/internal/adminapi"
	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/redisstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
	. "github.com/clade-gateway/clade-gateway/internal/reconcile"
	tu "github.com/clade-gateway/clade-gateway/internal/testutil"
)

func gauge(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, int) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			n++
			match := true
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					match = false
				}
			}
			if match && len(labels) > 0 {
				v += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
			if len(labels) == 0 {
				v += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return v, n
}

// reports is an Admin API answering fixed rows, counting its calls.
type reports struct {
	usage []adminapi.UsageRow
	calls atomic.Int64
	fail  error
}

func (r *reports) Usage(context.Context, time.Time, time.Time) ([]adminapi.UsageRow, error) {
	r.calls.Add(1)
	return r.usage, r.fail
}

func (r *reports) Costs(context.Context, time.Time, time.Time) ([]adminapi.CostRow, error) {
	return nil, r.fail
}

// TestLoopRunsOnOneReplica: two replicas share a Redis store; only the one
// holding the lease reconciles, exports drift and charges unmetered spend,
// once.
func TestLoopRunsOnOneReplica(t *testing.T) {
	rd := tu.StartRedis(t)
	past := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2).Add(4 * time.Hour)
	ws := budget.Budget{Scope: budget.ScopeWorkspace, Name: "prod", ID: "monthly", Period: budget.Monthly, Limit: money.USD(100), Enforce: true}
	pol := &policy.Policy{
		Workspaces: map[string]*policy.Workspace{"prod": {Name: "prod", AnthropicID: "wrkspc_01P",
			Keys: []policy.Key{{Name: "main", AnthropicID: "apikey_01M"}}, Budgets: []budget.Budget{ws}}},
		Reconcile: policy.Reconcile{ToleranceUSD: policy.DefaultToleranceUSD, ChargeUnmetered: true},
	}
	prices, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	rep := &reports{usage: []adminapi.UsageRow{{Hour: past, APIKeyID: "apikey_01M", WorkspaceID: "wrkspc_01P",
		Model: "claude-sonnet-4-6", ServiceTier: "standard", UncachedInput: 1e6}}} // $3 nobody forwarded

	type replica struct {
		loop *Loop
		reg  *prometheus.Registry
		st   *redisstore.Store
	}
	var reps []replica
	for range 2 {
		c := redis.NewClient(&redis.Options{Addr: rd.Addr(), ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = c.Close() })
		st, err := redisstore.New(c, storeopts.Options{Prefix: "loop"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		reg := prometheus.NewRegistry()
		src := Source{Policy: pol, Prices: prices, Ledger: st, Reports: rep}
		l := NewLoop(LoopOptions{Source: func() (Source, error) { return src, nil }, Store: st, Interval: time.Hour, Registerer: reg})
		reps = append(reps, replica{l, reg, st})
	}
	ctx := context.Background()
	for range 3 {
		for _, r := range reps {
			if err := r.loop.Once(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := rep.calls.Load(); n != 3 {
		t.Errorf("%d runs over three rounds of two replicas, want 3 (one replica holds the lease)", n)
	}
	if got, _ := gauge(t, reps[0].reg, "clade_gateway_reconcile_drift_usd", map[string]string{"workspace": "prod", "kind": Unmetered}); got != 3 {
		t.Errorf("lease holder exports unmetered %v, want 3", got)
	}
	if _, n := gauge(t, reps[1].reg, "clade_gateway_reconcile_drift_usd", nil); n != 0 {
		t.Errorf("the other replica exports %d drift series, want none", n)
	}
	st, err := reps[0].st.Status(ctx, []budget.Budget{ws})
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Spent != money.USD(3) {
		t.Errorf("workspace budget spent %s after three runs, want 3 charged once", st[0].Spent)
	}

	rep.fail = adminapi.ErrUnauthorized
	if err := reps[0].loop.Once(ctx); err == nil {
		t.Fatal("a refused key did not fail the run")
	}
	if got, _ := gauge(t, reps[0].reg, "clade_gateway_reconcile_failed_runs_total", nil); got != 1 {
		t.Errorf("failed runs %v, want 1", got)
	}
}
