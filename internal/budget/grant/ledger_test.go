package grant_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/grant"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

func TestLedgerThroughGrants(t *testing.T) { grantBackends(t, ledgerThroughGrants) }

func ledgerThroughGrants(t *testing.T, h grantHarness) {
	svc := storetest.Bud(budget.ScopeService, "granted", budget.Daily, 1_000_000, true)
	g := h.replica(t)
	hour := storetest.T0.Truncate(time.Hour)
	const n = 100
	for i := range n {
		r := storetest.MustReserve(t, g, storetest.Hold("g"+strconv.Itoa(i), 100, time.Minute, svc))
		if !r.InMemory() {
			t.Fatalf("request %d took the exact path", i)
		}
		r.Ledger = storetest.LedgerLines(hour.Add(time.Duration(i%2)*time.Hour), "prod", "claude-sonnet-4-6", 70)
		storetest.MustSettle(t, g, r, 70)
		storetest.MustSettle(t, g, r, 70)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.WantLevel(t, h.plain, svc, n*70, 0)
	got, err := h.plain.Ledger(context.Background(), hour, hour.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tok, nan := storetest.LedgerSum(t, got)
	if nan != n*70 || tok != n*110 || len(got) != 4 {
		t.Errorf("ledger after grants: %d tokens, %s in %d lines; want %d tokens, %d, 4 lines", tok, nan, len(got), n*110, n*70)
	}
}

func TestLedgerGrantStepResentAppliesOnce(t *testing.T) {
	grantBackends(t, ledgerGrantStepResentAppliesOnce)
}

func ledgerGrantStepResentAppliesOnce(t *testing.T, h grantHarness) {
	svc := storetest.Bud(budget.ScopeService, "retry", budget.Daily, 1_000_000, true)
	g := h.replica(t)
	grant.Crash(g)
	a, err := budget.PrepareHold(storetest.Hold("x", 10, time.Minute, svc), h.clock.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	spec := grant.SpecFor(g, a, h.clock.Now())
	ctx := context.Background()
	hour := storetest.T0.Truncate(time.Hour)
	grow := &grant.Step{N: 1, Add: 500, Exp: h.clock.Now().Add(time.Minute)}
	settle := &grant.Step{N: 2, Held: 500, Est: 30, Actual: 20, Exp: h.clock.Now().Add(time.Minute),
		Ledger: storetest.LedgerLines(hour, "prod", "m", 20)}
	for _, st := range []*grant.Step{grow, settle, settle} {
		if _, err := grant.BackendOf(g).StepGrant(ctx, spec, st); err != nil {
			t.Fatal(err)
		}
	}
	got, err := h.plain.Ledger(ctx, hour, hour.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, nan := storetest.LedgerSum(t, got); nan != 20 {
		t.Errorf("ledger after a resent step: %s, want 20", nan)
	}
}
