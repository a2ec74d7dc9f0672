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
	replicas := []*grant.Granted{h.replica(t), h.replica(t)}
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
