package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// ExactCapUnderConcurrency: 200 goroutines over 3 replicas
// race 600 requests of 1 unit (estimate = actual) against a 100-unit cap.
// Exactly 100 are admitted, each is charged once although it is settled
// twice, and after every admission spend plus live holds is within the
// cap as any replica sees it.
func ExactCapUnderConcurrency(t *testing.T, newH NewHarness) {
	const (
		unit       = money.Nanos(1_000_000) // $0.001
		capUnits   = 100
		goroutines = 200
		perG       = 3
	)
	h := newH(t)
	replicas := []budget.Store{h.Store, h.Replica(t), h.Replica(t)}
	svc := Bud(budget.ScopeService, "hot", budget.Daily, capUnits*unit, true)
	team := Bud(budget.ScopeTeam, "t", budget.Monthly, 10*capUnits*unit, true)
	dry := Bud(budget.ScopeWorkspace, "w", budget.Total, unit, false)
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	ctx := context.Background()
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			s := replicas[g%len(replicas)]
			for i := 0; i < perG; i++ {
				id := fmt.Sprintf("g%d-%d", g, i)
				r, err := s.Reserve(ctx, Hold(id, unit, time.Hour, svc, team, dry))
				if errors.Is(err, budget.ErrOverBudget) {
					refused.Add(1)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				admitted.Add(1)
				st, err := replicas[(g+1)%len(replicas)].Status(ctx, []budget.Budget{svc})
				if err != nil {
					t.Error(err)
					return
				}
				if total := st[0].Spent + st[0].Reserved; total > svc.Limit {
					t.Errorf("after admitting %s: spent %s + reserved %s > cap %s", id, st[0].Spent, st[0].Reserved, svc.Limit)
				}
				// Settle twice from two replicas at once.
				var sw sync.WaitGroup
				for k := 0; k < 2; k++ {
					sw.Add(1)
					go func(s budget.Store) {
						defer sw.Done()
						if err := s.Settle(ctx, r, unit); err != nil {
							t.Error(err)
						}
					}(replicas[(g+k)%len(replicas)])
				}
				sw.Wait()
			}
		}(g)
	}
	wg.Wait()
	if admitted.Load() != capUnits || admitted.Load()+refused.Load() != goroutines*perG {
		t.Errorf("admitted %d refused %d, want %d admitted of %d", admitted.Load(), refused.Load(), capUnits, goroutines*perG)
	}
	WantLevel(t, replicas[0], svc, capUnits*unit, 0)
	WantLevel(t, replicas[1], team, capUnits*unit, 0)
	WantLevel(t, replicas[2], dry, capUnits*unit, 0) // dry run counted all, refused none
	t.Logf("admitted %d, refused %d, final spend %s of cap %s",
		admitted.Load(), refused.Load(), capUnits*unit, svc.Limit)
}

// RandomInterleavings drives reserve, extend, settle,
// duplicate settle and lease expiry in random order across replicas, with
// actual cost at most the estimate. Whatever the order: spend plus live
// holds never exceeds the cap, and once everything is settled spend equals
// the sum of actual costs exactly (nothing lost, nothing twice). It runs
// three seeds, each on fresh stores.
func RandomInterleavings(t *testing.T, newH NewHarness) {
	for seed := uint64(1); seed <= 3; seed++ {
		runInterleaving(t, newH, seed)
	}
}

func runInterleaving(t *testing.T, newH NewHarness, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 42))
	ctx := context.Background()
	h := newH(t)
	clock := h.Clock
	replicas := []budget.Store{h.Store, h.Replica(t), h.Replica(t)}
	b := Bud(budget.ScopeService, "rnd", budget.Monthly, 1000, true)
	other := Bud(budget.ScopeTeam, "rnd", budget.Total, 5000, true)
	var (
		open    []budget.Reservation
		actuals = map[string]money.Nanos{}
		want    money.Nanos
	)
	check := func(step int) {
		st, err := replicas[rng.IntN(3)].Status(ctx, []budget.Budget{b})
		if err != nil {
			t.Fatal(err)
		}
		if st[0].Spent+st[0].Reserved > b.Limit {
			t.Fatalf("seed %d step %d: spent %s + reserved %s > cap %s", seed, step, st[0].Spent, st[0].Reserved, b.Limit)
		}
	}
	for step := 0; step < 300; step++ {
		s := replicas[rng.IntN(3)]
		switch op := rng.IntN(10); {
		case op < 4:
			est := money.Nanos(1 + rng.IntN(80))
			id := fmt.Sprintf("s%d-%d", seed, step)
			r, err := s.Reserve(ctx, Hold(id, est, time.Duration(1+rng.IntN(60))*time.Second, b, other))
			if err == nil {
				open = append(open, r)
				check(step)
			} else if !errors.Is(err, budget.ErrOverBudget) {
				t.Fatal(err)
			}
		case op < 7 && len(open) > 0:
			i := rng.IntN(len(open))
			r := open[i]
			a, seen := actuals[r.RequestID]
			if !seen {
				a = money.Nanos(rng.IntN(int(r.Amount) + 1))
				actuals[r.RequestID] = a
				want += a
			}
			if err := s.Settle(ctx, r, a); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(3) > 0 { // sometimes settle again later
				open = append(open[:i], open[i+1:]...)
			}
		case op < 8 && len(open) > 0:
			if err := s.Extend(ctx, open[rng.IntN(len(open))], 30*time.Second); err != nil {
				t.Fatal(err)
			}
		default:
			clock.Add(time.Duration(rng.IntN(20)) * time.Second)
			check(step)
		}
	}
	clock.Add(2 * time.Minute) // every remaining lease ends
	for _, r := range open {
		a, seen := actuals[r.RequestID]
		if !seen {
			a = money.Nanos(rng.IntN(int(r.Amount) + 1))
			want += a
		}
		if err := replicas[rng.IntN(3)].Settle(ctx, r, a); err != nil {
			t.Fatal(err)
		}
	}
	WantLevel(t, replicas[0], b, want, 0)
	WantLevel(t, replicas[1], other, want, 0)
}
