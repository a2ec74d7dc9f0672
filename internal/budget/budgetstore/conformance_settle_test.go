package budgetstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the rollover cases need a real zone on any machine

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// runSettleConformance covers settlement, expiry, leases and retries.
func runSettleConformance(t *testing.T, newH newHarness) {
	ctx := context.Background()
	svc := bud(budget.ScopeService, "search", budget.Daily, 10, true)
	team := bud(budget.ScopeTeam, "core", budget.Monthly, 5, true)
	ws := bud(budget.ScopeWorkspace, "prod", budget.Total, 100, true)

	t.Run("SettleIsIdempotent", func(t *testing.T) {
		h := newH(t)
		r := mustReserve(t, h.store, hold("once", 3, time.Minute, svc, team))
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(s budget.Store) {
				defer wg.Done()
				if err := s.Settle(ctx, r, 2); err != nil {
					t.Error(err)
				}
			}(h.replica(t))
		}
		wg.Wait()
		mustSettle(t, h.store, r, 2)
		wantLevel(t, h.store, svc, 2, 0)
		wantLevel(t, h.store, team, 2, 0)
	})

	t.Run("SettleAfterExpiryCorrectsOrphanCharge", func(t *testing.T) {
		for _, actual := range []money.Nanos{2, 5, 7, 0} {
			h := newH(t)
			s := h.store
			r := mustReserve(t, s, hold("slow", 5, time.Minute, svc, ws))
			h.clock.Add(time.Minute) // the lease ends exactly now
			wantLevel(t, s, svc, 5, 0)
			// The other window is charged the estimate too, before anyone reads it.
			wantLevel(t, s, ws, 5, 0)
			if err := s.Extend(ctx, r, time.Minute); err != nil {
				t.Fatalf("Extend of an expired hold: %v", err)
			}
			wantLevel(t, s, svc, 5, 0)
			mustSettle(t, s, r, actual)
			mustSettle(t, s, r, actual)
			wantLevel(t, s, svc, actual, 0)
			wantLevel(t, s, ws, actual, 0)
		}
	})

	t.Run("SettleOfExpiredUnprunedHoldChargesActual", func(t *testing.T) {
		h := newH(t)
		r := mustReserve(t, h.store, hold("late", 5, time.Minute, svc, ws))
		h.clock.Add(2 * time.Minute)
		mustSettle(t, h.store, r, 1) // nobody pruned in between
		wantLevel(t, h.store, svc, 1, 0)
		wantLevel(t, h.store, ws, 1, 0)
	})

	t.Run("SettleOfUnknownHoldChargesOnce", func(t *testing.T) {
		h := newH(t)
		// As the lead builds it for a request forwarded while the store was down.
		r := budget.Reservation{RequestID: "journaled", Keys: []string{svc.Key(t0), ws.Key(t0)}}
		mustSettle(t, h.store, r, 4)
		mustSettle(t, h.replica(t), r, 4)
		wantLevel(t, h.store, svc, 4, 0)
		wantLevel(t, h.store, ws, 4, 0)
		if _, err := h.store.Reserve(ctx, hold("journaled", 1, time.Minute, svc)); !errors.Is(err, budget.ErrDuplicate) {
			t.Errorf("reserve under a settled request ID = %v, want ErrDuplicate", err)
		}
	})

	t.Run("SettleUsesTheWindowsTheHoldIsOn", func(t *testing.T) {
		h := newH(t)
		r := mustReserve(t, h.store, hold("moved", 5, time.Minute, svc, ws))
		r.Keys = []string{svc.Key(t0)} // e.g. rebuilt by a caller that forgot one
		mustSettle(t, h.store, r, 3)
		wantLevel(t, h.store, svc, 3, 0)
		wantLevel(t, h.store, ws, 3, 0)
	})

	t.Run("ExpiredHoldStopsPinningTheBudget", func(t *testing.T) {
		// A replica dies holding 5 of 10 with an estimate far above what
		// it spent. Its lease ends: the hold no longer counts as live,
		// its estimate is charged (never undercount), and the late
		// settlement gives the difference back to other callers.
		h := newH(t)
		s, other := h.store, h.replica(t)
		r := mustReserve(t, s, hold("dead", 8, time.Minute, svc))
		mustExceed(t, other, hold("o1", 3, time.Minute, svc))
		h.clock.Add(61 * time.Second)
		wantLevel(t, other, svc, 8, 0)
		mustReserve(t, other, hold("o2", 2, time.Minute, svc))
		mustExceed(t, other, hold("o3", 1, time.Minute, svc))
		mustSettle(t, other, r, 1) // the journal replays the dead replica's usage
		wantLevel(t, other, svc, 1, 2)
		mustReserve(t, other, hold("o4", 7, time.Minute, svc))
	})

	t.Run("ManyExpiredHoldsPruneInBoundedSteps", func(t *testing.T) {
		// More holds than one call prunes (1000): the total admission sees
		// is exact at once, and the split settles on the next read.
		h := newH(t)
		big := bud(budget.ScopeService, "many", budget.Daily, 2000, true)
		const n = 1200
		var wg sync.WaitGroup
		for g := 0; g < 24; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := g; i < n; i += 24 {
					if _, err := h.store.Reserve(ctx, hold(fmt.Sprint("m", i), 1, time.Minute, big)); err != nil {
						t.Error(err)
						return
					}
				}
			}(g)
		}
		wg.Wait()
		h.clock.Add(time.Minute)
		st, err := h.store.Status(ctx, []budget.Budget{big})
		if err != nil {
			t.Fatal(err)
		}
		if st[0].Spent+st[0].Reserved != n || st[0].Spent < 1000 {
			t.Errorf("after one prune: spent %s reserved %s, want a total of %d with at least 1000 spent", st[0].Spent, st[0].Reserved, n)
		}
		mustExceed(t, h.store, hold("over", 2000-n+1, time.Minute, big))
		wantLevel(t, h.store, big, n, 0)
	})

	t.Run("ExtendKeepsHoldAlivePastTTL", func(t *testing.T) {
		h := newH(t)
		s := h.store
		r := mustReserve(t, s, hold("stream", 4, time.Minute, svc, ws))
		for i := 0; i < 3; i++ {
			h.clock.Add(50 * time.Second)
			if err := s.Extend(ctx, r, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		h.clock.Add(50 * time.Second) // 200s after a 60s lease
		wantLevel(t, s, svc, 0, 4)
		wantLevel(t, s, ws, 0, 4)
		// A shorter extension never cuts a lease short.
		if err := s.Extend(ctx, r, time.Second); err != nil {
			t.Fatal(err)
		}
		h.clock.Add(5 * time.Second)
		wantLevel(t, s, svc, 0, 4)
		mustSettle(t, s, r, 3)
		wantLevel(t, s, svc, 3, 0)
		wantLevel(t, s, ws, 3, 0)
	})

	t.Run("ReserveRetryIsNotDoubled", func(t *testing.T) {
		h := newH(t)
		r1 := mustReserve(t, h.store, hold("retry", 4, time.Minute, svc))
		r2 := mustReserve(t, h.store, hold("retry", 4, time.Minute, svc))
		if r1.Remaining != 6 || r2.Remaining != 6 {
			t.Errorf("remaining = %s, %s, want 6 both times", r1.Remaining, r2.Remaining)
		}
		wantLevel(t, h.store, svc, 0, 4)
		mustSettle(t, h.store, r1, 4)
		if _, err := h.store.Reserve(ctx, hold("retry", 4, time.Minute, svc)); !errors.Is(err, budget.ErrDuplicate) {
			t.Errorf("reserve after settle = %v, want ErrDuplicate", err)
		}
		wantLevel(t, h.store, svc, 4, 0)
	})

	t.Run("HoldChargesTheWindowItReservedIn", func(t *testing.T) {
		h := newH(t)
		day1 := time.Date(2026, 11, 27, 23, 59, 59, 0, time.UTC)
		h.clock.Set(day1)
		r := mustReserve(t, h.store, hold("midnight", 5, 10*time.Minute, svc))
		h.clock.Set(day1.Add(2 * time.Second))
		wantLevel(t, h.store, svc, 0, 0) // the new day starts empty
		mustSettle(t, h.store, r, 3)
		wantLevel(t, h.store, svc, 0, 0)
		h.clock.Set(day1)
		wantLevel(t, h.store, svc, 3, 0)
	})
}
