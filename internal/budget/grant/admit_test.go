package grant_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/grant"
	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

func TestGrantAdmitsInMemoryAndChargesExactly(t *testing.T) {
	grantBackends(t, grantAdmitsInMemoryAndChargesExactly)
}

func grantAdmitsInMemoryAndChargesExactly(t *testing.T, h grantHarness) {
	svc := storetest.Bud(budget.ScopeService, "search", budget.Daily, 1_000_000, true)
	team := storetest.Bud(budget.ScopeTeam, "core", budget.Monthly, 2_000_000, true)
	g := h.replica(t)

	const n = 200
	for i := range n {
		r := storetest.MustReserve(t, g, storetest.Hold("r"+strconv.Itoa(i), 100, time.Minute, svc, team))
		if !r.InMemory() {
			t.Fatalf("request %d took the exact path", i)
		}
		if !r.HasRemaining || r.Remaining <= 0 || r.Remaining > 1_000_000 {
			t.Errorf("request %d: remaining %s", i, r.Remaining)
		}
		storetest.MustSettle(t, g, r, 70)
		storetest.MustSettle(t, g, r, 70) // a second settlement of one request changes nothing
	}
	storetest.Eventually(t, "every settlement is charged", func() bool { s, _ := storetest.Levels(t, h.plain, svc); return s == n*70 })
	calls := h.steps.Load()
	t.Logf("%d requests, %d grant steps", n, calls)
	if calls > n/4 {
		t.Errorf("%d requests took %d grant steps; grants should need a few", n, calls)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	for _, b := range []budget.Budget{svc, team} {
		if s, r := storetest.Levels(t, h.plain, b); s != n*70 || r != 0 {
			t.Errorf("%s after close: spent %s reserved %s, want %d and 0", b.Label(), s, r, n*70)
		}
	}
}

func TestGrantCapHoldsAcrossReplicas(t *testing.T) {
	t.Run("redis", func(t *testing.T) { grantCapHoldsAcrossReplicas(t, newGrantHarness(t, redistest.SharedAddr(t))) })
	t.Run("cluster", func(t *testing.T) { grantCapHoldsAcrossReplicas(t, clusterGrantHarness(t)) })
	t.Run("bolt", func(t *testing.T) { grantCapHoldsAcrossReplicas(t, boltGrantHarness(t)) })
}

func grantCapHoldsAcrossReplicas(t *testing.T, h grantHarness) {
	ws := storetest.Bud(budget.ScopeWorkspace, "prod", budget.Daily, 1000, true)
	var admitted, drawn atomic.Int64
	var wg sync.WaitGroup
	replicas := []*grant.Granted{h.replica(t), h.replica(t), h.replica(t)}
	for ri, g := range replicas {
		for w := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					id := strconv.Itoa(ri) + "-" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
					r, err := g.Reserve(context.Background(), storetest.Hold(id, 10, time.Minute, ws))
					if errors.Is(err, budget.ErrOverBudget) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					admitted.Add(1)
					if r.InMemory() {
						drawn.Add(1)
					}
					if err := g.Settle(context.Background(), r, 10); err != nil {
						t.Error(err)
					}
				}
			}()
		}
	}
	wg.Wait()
	for _, g := range replicas {
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	}
	n := admitted.Load()
	t.Logf("admitted %d of 100", n)
	spent, reserved := storetest.Levels(t, h.plain, ws)
	if n*10 > 1000 || spent != money.Nanos(n*10) || reserved != 0 {
		t.Errorf("admitted %d (cap 100), spent %s reserved %s: want spent = 10 × admitted ≤ 1000, 0 reserved", n, spent, reserved)
	}
	// Slices other replicas held when the cap came near are the only
	// budget left unused; the exact path admits the rest.
	if n < 80 {
		t.Errorf("admitted %d of 100: too much of the cap stayed in unused slices", n)
	}
	if drawn.Load() == 0 {
		t.Error("no request drew on a grant: the race ran on the exact path alone")
	}
}

func TestGrantRefusedGrowthTakesTheExactPath(t *testing.T) {
	grantBackends(t, grantRefusedGrowthTakesTheExactPath)
}

func grantRefusedGrowthTakesTheExactPath(t *testing.T, h grantHarness) {
	svc := storetest.Bud(budget.ScopeService, "tiny", budget.Daily, 25, true)
	g := h.replica(t)
	defer g.Close()
	// A grant of 16 requests (160) does not fit 25: each request then
	// holds exactly its own amount, as without grants.
	r1 := storetest.MustReserve(t, g, storetest.Hold("a", 10, time.Minute, svc))
	r2 := storetest.MustReserve(t, g, storetest.Hold("b", 10, time.Minute, svc))
	if r1.InMemory() || r2.InMemory() {
		t.Fatalf("near the cap, requests drew on a grant: %v %v", r1.InMemory(), r2.InMemory())
	}
	if ex := storetest.MustExceed(t, g, storetest.Hold("c", 10, time.Minute, svc)); ex.Budget.Name != "tiny" {
		t.Errorf("exceeded %s", ex.Budget.Label())
	}
	storetest.MustSettle(t, g, r1, 4)
	storetest.MustSettle(t, g, r2, 5)
	storetest.WantLevel(t, h.plain, svc, 9, 0)
}

func TestGrantIdleSliceIsReturned(t *testing.T) { grantBackends(t, grantIdleSliceIsReturned) }

func grantIdleSliceIsReturned(t *testing.T, h grantHarness) {
	svc := storetest.Bud(budget.ScopeService, "idle", budget.Daily, 1_000_000, true)
	g := h.replica(t)
	defer g.Close()
	r := storetest.MustReserve(t, g, storetest.Hold("long", 100, time.Minute, svc))
	if _, held := storetest.Levels(t, h.plain, svc); held <= 100 {
		t.Fatalf("grant holds %s, want more than the request", held)
	}
	h.clock.Add(2 * time.Second) // past Idle: only the request in flight stays held
	storetest.Eventually(t, "the unused slice is returned", func() bool { _, held := storetest.Levels(t, h.plain, svc); return held == 100 })
	storetest.MustSettle(t, g, r, 60)
	storetest.Eventually(t, "the request is charged", func() bool { s, held := storetest.Levels(t, h.plain, svc); return s == 60 && held == 0 })
}

func TestGrantOfACrashedReplicaIsChargedAtLeaseEnd(t *testing.T) {
	grantBackends(t, grantOfACrashedReplicaIsChargedAtLeaseEnd)
}

func grantOfACrashedReplicaIsChargedAtLeaseEnd(t *testing.T, h grantHarness) {
	svc := storetest.Bud(budget.ScopeService, "crashy", budget.Daily, 1_000_000, true)
	a := h.replica(t)
	for i := range 3 {
		storetest.MustReserve(t, a, storetest.Hold("inflight"+strconv.Itoa(i), 100, time.Minute, svc))
	}
	grant.Crash(a)
	_, held := storetest.Levels(t, h.plain, svc)
	if held < 300 {
		t.Fatalf("grant holds %s, want at least the 3 requests in flight", held)
	}
	h.clock.Add(time.Minute + time.Second)
	// Nobody will settle: the whole grant is charged, its unused slice
	// included (the price of admitting without a round trip).
	if s, r := storetest.Levels(t, h.plain, svc); s != held || r != 0 {
		t.Errorf("after the lease: spent %s reserved %s, want spent %s (the grant) and 0", s, r, held)
	}
}

func TestGrantLostLeaseIsCorrectedBySettlement(t *testing.T) {
	grantBackends(t, grantLostLeaseIsCorrectedBySettlement)
}

func grantLostLeaseIsCorrectedBySettlement(t *testing.T, h grantHarness) {
	svc := storetest.Bud(budget.ScopeService, "late", budget.Daily, 1_000_000, true)
	a := h.replica(t)
	defer a.Close()
	r := storetest.MustReserve(t, a, storetest.Hold("slow", 100, time.Minute, svc))
	// The replica cannot renew (its background stopped, as if Redis had
	// been out of reach) and the lease ends: the grant is an orphan.
	grant.Crash(a)
	h.clock.Add(time.Minute + time.Second)
	if s, _ := storetest.Levels(t, h.plain, svc); s < 100 {
		t.Fatalf("orphaned grant charged %s", s)
	}
	if _, err := a.Reserve(context.Background(), storetest.Hold("after", 100, time.Minute, svc)); err != nil {
		t.Fatal(err)
	}
	// The late settlement replaces the orphan charge: the request's
	// actual cost stays, the unused slice comes back.
	storetest.MustSettle(t, a, r, 42)
	storetest.Eventually(t, "the orphan charge is corrected", func() bool { s, _ := storetest.Levels(t, h.plain, svc); return s == 42 })
}

func TestGrantStepAppliesOnce(t *testing.T) { grantBackends(t, grantStepAppliesOnce) }

func grantStepAppliesOnce(t *testing.T, h grantHarness) {
	svc := storetest.Bud(budget.ScopeService, "retry", budget.Daily, 1_000_000, true)
	g := h.replica(t)
	grant.Crash(g) // only the steps this test sends
	a, err := budget.PrepareHold(storetest.Hold("x", 10, time.Minute, svc), h.clock.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	spec := grant.SpecFor(g, a, h.clock.Now())
	ctx := context.Background()
	grow := &grant.Step{N: 1, Add: 500, Exp: h.clock.Now().Add(time.Minute)}
	settle := &grant.Step{N: 2, Held: 500, Add: 0, Est: 30, Actual: 20, Release: 100, Exp: h.clock.Now().Add(time.Minute)}
	for _, st := range []*grant.Step{grow, grow, settle, settle} { // each sent twice, as after a lost reply
		rep, err := grant.BackendOf(g).StepGrant(ctx, spec, st)
		if err != nil || rep.Tag != "ok" {
			t.Fatalf("step %d: %+v, %v", st.N, rep, err)
		}
	}
	storetest.WantLevel(t, h.plain, svc, 20, 370)
	if _, err := grant.BackendOf(g).StepGrant(ctx, spec, &grant.Step{N: 4, Held: 370, Exp: h.clock.Now().Add(time.Minute)}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("a step out of order: %v, want ErrInvalid", err)
	}
	storetest.WantLevel(t, h.plain, svc, 20, 370)
}

func TestGrantPolicyChangeStartsANewGrant(t *testing.T) {
	grantBackends(t, grantPolicyChangeStartsANewGrant)
}

func grantPolicyChangeStartsANewGrant(t *testing.T, h grantHarness) {
	before := storetest.Bud(budget.ScopeService, "reload", budget.Daily, 1_000_000, true)
	after := before
	after.Limit = 2_000_000 // same window, new limit: the old grant was fit-checked under the old one
	g := h.replica(t)
	r1 := storetest.MustReserve(t, g, storetest.Hold("old", 10, time.Minute, before))
	r2 := storetest.MustReserve(t, g, storetest.Hold("new", 10, time.Minute, after))
	r3 := storetest.MustReserve(t, g, storetest.Hold("new2", 10, time.Minute, after))
	if !r1.InMemory() || !r2.InMemory() || r1.Draw == r2.Draw || r2.Draw != r3.Draw {
		t.Fatalf("grants: old %p, new %p, new again %p: want one grant per limit", r1.Draw, r2.Draw, r3.Draw)
	}
	storetest.MustSettle(t, g, r1, 4)
	storetest.MustSettle(t, g, r2, 5)
	storetest.MustSettle(t, g, r3, 6)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.WantLevel(t, h.plain, after, 15, 0)
}

// An outage must not bury the log: the tend loop retries a failing step
// about four times a second, but a grant warns once when its steps start
// failing, then once per grantWarnEvery, and says when they succeed again.

// The store's in-flight gauge counts a replica's draws from its grants'
// own record: while unsettled, until settled or their grant's lease ends.
// A draw needs no Extend for that; a hold on the exact path does.
func TestGrantDrawsCountInFlight(t *testing.T) {
	grantBackends(t, grantDrawsCountInFlight)
}

func grantDrawsCountInFlight(t *testing.T, h grantHarness) {
	svc := storetest.Bud(budget.ScopeService, "search", budget.Daily, 1_000_000, true)
	g := h.replica(t)
	defer g.Close()
	flight := grant.BackendOf(g).GrantEnv().Flight
	want := func(n float64, when string) {
		t.Helper()
		if got := flight.Count(); got != n {
			t.Fatalf("%s: %v holds in flight, want %v", when, got, n)
		}
	}

	var draws []budget.Reservation
	for i := range 3 {
		r := storetest.MustReserve(t, g, storetest.Hold("d"+strconv.Itoa(i), 100, time.Minute, svc))
		if !r.InMemory() || !r.Renewed() {
			t.Fatalf("request %d took the exact path", i)
		}
		draws = append(draws, r)
	}
	exact := storetest.MustReserve(t, g, storetest.Hold("long", 100, 2*time.Minute, svc)) // longer than the lease
	if exact.InMemory() || exact.Renewed() {
		t.Fatal("a hold longer than the grant's lease drew on the grant")
	}
	storetest.MustSettle(t, g, exact, 70)
	want(3, "three draws")
	storetest.MustSettle(t, g, draws[0], 70)
	want(2, "after one settled")
	h.clock.Add(2 * time.Minute) // past the grant's lease: the store charges it as an orphan
	want(0, "after the grant's lease ended")
}
