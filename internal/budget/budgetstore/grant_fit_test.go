package budgetstore

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// TestGrantFitNearTheCap: replicas admitting from grants fit requests on
// the exact path once their grants cannot grow, and together never hold or
// spend past the cap.
func TestGrantFitNearTheCap(t *testing.T) { grantBackends(t, grantFitNearTheCap) }

func grantFitNearTheCap(t *testing.T, h grantHarness) {
	ws := storetest.Bud(budget.ScopeWorkspace, "prod", budget.Daily, 10_000, true)
	f := budget.Fit{Fixed: 100, PerUnit: 10, Min: 10, Max: 90} // 1,000 whole, 200 at the floor
	var fitted, admitted, actual atomic.Int64
	var wg sync.WaitGroup
	replicas := []*Granted{h.replica(t), h.replica(t)}
	for ri, g := range replicas {
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				refusals := 0
				for i := 0; refusals < 100; i++ {
					id := strconv.Itoa(ri) + "-" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
					r, err := g.Reserve(context.Background(), storetest.FitHold(id, 1_000, f, ws))
					if errors.Is(err, budget.ErrOverBudget) {
						refusals++
						time.Sleep(2 * time.Millisecond)
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					admitted.Add(1)
					cost := money.Nanos(150)
					if r.Fitted > 0 {
						fitted.Add(1)
						if r.Amount != f.Amount(r.Fitted) || r.Fitted < f.Min || r.Fitted >= 90 {
							t.Errorf("fitted reservation %+v", r)
						}
					}
					if cost > r.Amount {
						t.Errorf("hold %s below its cost", r.Amount)
					}
					actual.Add(int64(cost))
					if err := g.Settle(context.Background(), r, cost); err != nil {
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
	spent, reserved := storetest.Levels(t, h.plain, ws)
	t.Logf("admitted %d (%d fitted), spent %s of %s", admitted.Load(), fitted.Load(), spent, ws.Limit)
	if spent != money.Nanos(actual.Load()) || reserved != 0 || spent > ws.Limit {
		t.Errorf("spent %s reserved %s, want spent = Σ actual %d ≤ limit, nothing reserved", spent, reserved, actual.Load())
	}
	if fitted.Load() == 0 {
		t.Error("no request was fitted near the cap")
	}
	// Each worker stops after 100 refusals in a row: by then at most the
	// floor of one request per worker can be left.
	if left := ws.Limit - spent; left >= 200 {
		t.Errorf("%s left unspent, room for a request at the floor", left)
	}
}

// A grant covers the demand of eight steps' durations (so the quarter it
// grows at covers two) while its store's steps take longer than an eighth
// of a Window, up to maxSlowScale Windows, and shrinks back as the slow
// step is forgotten.
func TestGrantTargetCoversSlowSteps(t *testing.T) {
	clock := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	pace := &stepPace{now: func() time.Time { return clock }}
	gr := &grant{window: 100 * time.Millisecond, pace: pace}
	gr.demand[0] = 1000
	if got := gr.target(10); got != 1000 {
		t.Fatalf("no step yet: target %s, want a Window of demand (1000)", got)
	}
	pace.note(10 * time.Millisecond)
	if got := gr.target(10); got != 1000 {
		t.Errorf("10 ms steps: target %s, want a Window of demand (1000)", got)
	}
	pace.note(30 * time.Millisecond)
	if got := gr.target(10); got != 2400 {
		t.Errorf("a 30 ms step: target %s, want the demand of 240 ms (2400)", got)
	}
	pace.note(10 * time.Second)
	if got := gr.target(10); got != maxSlowScale*1000 {
		t.Errorf("a 10 s step: target %s, want %d Windows (%d)", got, maxSlowScale, maxSlowScale*1000)
	}
	// Fast steps do not wipe a slow one out: only time does.
	for range 300 {
		pace.note(time.Millisecond)
	}
	if got := gr.target(10); got != maxSlowScale*1000 {
		t.Errorf("300 fast steps right after a slow one: target %s, want still %d", got, maxSlowScale*1000)
	}
	clock = clock.Add(paceHalfLife)
	pace.note(time.Millisecond)
	if got := gr.target(10); got != maxSlowScale*1000 {
		t.Errorf("one half-life later (5 s): target %s, want still %d", got, maxSlowScale*1000)
	}
	clock = clock.Add(10 * paceHalfLife) // 10 s / 2^11: under 5 ms
	if got := gr.target(10); got != 1000 {
		t.Errorf("eleven half-lives after the slow step: target %s, want 1000 again", got)
	}
	pace.note(30 * time.Millisecond)
	gr.hasRem, gr.rem = true, 2000
	if got := gr.target(10); got != 500 {
		t.Errorf("near the cap: target %s, want a quarter of what is left (500)", got)
	}
}

// A grant opened after a slow step starts grown: the pace is the store's.
func TestNewGrantStartsWithTheStoresPace(t *testing.T) {
	g := &Granted{o: GrantOptions{Window: 100 * time.Millisecond}, active: map[string]*grant{}, all: map[string]*grant{}}
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	g.pace.now = func() time.Time { return at }
	g.pace.note(50 * time.Millisecond)
	gr := g.grantFor(reserveArgs{keysJoin: "k"}, time.Now())
	gr.demand[0] = 1000
	if got := gr.target(10); got != 4000 {
		t.Errorf("new grant after a 50 ms step: target %s, want the demand of 400 ms (4000)", got)
	}
}
