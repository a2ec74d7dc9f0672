package storetest

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
func runSettleConformance(t *testing.T, newH NewHarness) {
	ctx := context.Background()
	svc := Bud(budget.ScopeService, "search", budget.Daily, 10, true)
	team := Bud(budget.ScopeTeam, "core", budget.Monthly, 5, true)
	ws := Bud(budget.ScopeWorkspace, "prod", budget.Total, 100, true)

	t.Run("SettleIsIdempotent", func(t *testing.T) {
		h := newH(t)
		r := MustReserve(t, h.Store, Hold("once", 3, time.Minute, svc, team))
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(s budget.Store) {
				defer wg.Done()
				if err := s.Settle(ctx, r, 2); err != nil {
					t.Error(err)
				}
			}(h.Replica(t))
		}
		wg.Wait()
		MustSettle(t, h.Store, r, 2)
		WantLevel(t, h.Store, svc, 2, 0)
		WantLevel(t, h.Store, team, 2, 0)
	})

	t.Run("SettleAfterExpiryCorrectsOrphanCharge", func(t *testing.T) {
		for _, actual := range []money.Nanos{2, 5, 7, 0} {
			h := newH(t)
			s := h.Store
			r := MustReserve(t, s, Hold("slow", 5, time.Minute, svc, ws))
			h.Clock.Add(time.Minute) // the lease ends exactly now
			WantLevel(t, s, svc, 5, 0)
			// The other window is charged the estimate too, before anyone reads it.
			WantLevel(t, s, ws, 5, 0)
			if err := s.Extend(ctx, r, time.Minute); err != nil {
				t.Fatalf("Extend of an expired hold: %v", err)
			}
			WantLevel(t, s, svc, 5, 0)
			MustSettle(t, s, r, actual)
			MustSettle(t, s, r, actual)
			WantLevel(t, s, svc, actual, 0)
			WantLevel(t, s, ws, actual, 0)
		}
	})

	t.Run("SettleOfExpiredUnprunedHoldChargesActual", func(t *testing.T) {
		h := newH(t)
		r := MustReserve(t, h.Store, Hold("late", 5, time.Minute, svc, ws))
		h.Clock.Add(2 * time.Minute)
		MustSettle(t, h.Store, r, 1) // nobody pruned in between
		WantLevel(t, h.Store, svc, 1, 0)
		WantLevel(t, h.Store, ws, 1, 0)
	})

	t.Run("SettleOfUnknownHoldChargesOnce", func(t *testing.T) {
		h := newH(t)
		// As the lead builds it for a request forwarded while the store was down.
		r := budget.Reservation{RequestID: "journaled", Keys: []string{svc.Key(T0), ws.Key(T0)}}
		MustSettle(t, h.Store, r, 4)
		MustSettle(t, h.Replica(t), r, 4)
		WantLevel(t, h.Store, svc, 4, 0)
		WantLevel(t, h.Store, ws, 4, 0)
		if _, err := h.Store.Reserve(ctx, Hold("journaled", 1, time.Minute, svc)); !errors.Is(err, budget.ErrDuplicate) {
			t.Errorf("reserve under a settled request ID = %v, want ErrDuplicate", err)
		}
	})

	t.Run("SettleUsesTheWindowsTheHoldIsOn", func(t *testing.T) {
		h := newH(t)
		r := MustReserve(t, h.Store, Hold("moved", 5, time.Minute, svc, ws))
		r.Keys = []string{svc.Key(T0)} // e.g. rebuilt by a caller that forgot one
		MustSettle(t, h.Store, r, 3)
		WantLevel(t, h.Store, svc, 3, 0)
		WantLevel(t, h.Store, ws, 3, 0)
	})

	t.Run("ExpiredHoldStopsPinningTheBudget", func(t *testing.T) {
		// A replica dies holding 5 of 10 with an estimate far above what
		// it spent. Its lease ends: the hold no longer counts as live,
		// its estimate is charged (never undercount), and the late
		// settlement gives the difference back to other callers.
		h := newH(t)
		s, other := h.Store, h.Replica(t)
		r := MustReserve(t, s, Hold("dead", 8, time.Minute, svc))
		_ = MustExceed(t, other, Hold("o1", 3, time.Minute, svc))
		h.Clock.Add(61 * time.Second)
		WantLevel(t, other, svc, 8, 0)
		MustReserve(t, other, Hold("o2", 2, time.Minute, svc))
		_ = MustExceed(t, other, Hold("o3", 1, time.Minute, svc))
		MustSettle(t, other, r, 1) // the journal replays the dead replica's usage
		WantLevel(t, other, svc, 1, 2)
		MustReserve(t, other, Hold("o4", 7, time.Minute, svc))
	})

	t.Run("ManyExpiredHoldsPruneInBoundedSteps", func(t *testing.T) {
		// More holds than one call prunes (1000): the total admission sees
		// is exact at once, and the split settles on the next read.
		h := newH(t)
		big := Bud(budget.ScopeService, "many", budget.Daily, 2000, true)
		const n = 1200
		var wg sync.WaitGroup
		for g := 0; g < 24; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := g; i < n; i += 24 {
					if _, err := h.Store.Reserve(ctx, Hold(fmt.Sprint("m", i), 1, time.Minute, big)); err != nil {
						t.Error(err)
						return
					}
				}
			}(g)
		}
		wg.Wait()
		h.Clock.Add(time.Minute)
		st, err := h.Store.Status(ctx, []budget.Budget{big})
		if err != nil {
			t.Fatal(err)
		}
		if st[0].Spent+st[0].Reserved != n || st[0].Spent < 1000 {
			t.Errorf("after one prune: spent %s reserved %s, want a total of %d with at least 1000 spent", st[0].Spent, st[0].Reserved, n)
		}
		_ = MustExceed(t, h.Store, Hold("over", 2000-n+1, time.Minute, big))
		WantLevel(t, h.Store, big, n, 0)
	})

	t.Run("ExtendKeepsHoldAlivePastTTL", func(t *testing.T) {
		h := newH(t)
		s := h.Store
		r := MustReserve(t, s, Hold("stream", 4, time.Minute, svc, ws))
		for i := 0; i < 3; i++ {
			h.Clock.Add(50 * time.Second)
			if err := s.Extend(ctx, r, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		h.Clock.Add(50 * time.Second) // 200s after a 60s lease
		WantLevel(t, s, svc, 0, 4)
		WantLevel(t, s, ws, 0, 4)
		// A shorter extension never cuts a lease short.
		if err := s.Extend(ctx, r, time.Second); err != nil {
			t.Fatal(err)
		}
		h.Clock.Add(5 * time.Second)
		WantLevel(t, s, svc, 0, 4)
		MustSettle(t, s, r, 3)
		WantLevel(t, s, svc, 3, 0)
		WantLevel(t, s, ws, 3, 0)
	})

	t.Run("ReserveRetryIsNotDoubled", func(t *testing.T) {
		h := newH(t)
		r1 := MustReserve(t, h.Store, Hold("retry", 4, time.Minute, svc))
		r2 := MustReserve(t, h.Store, Hold("retry", 4, time.Minute, svc))
		if r1.Remaining != 6 || r2.Remaining != 6 {
			t.Errorf("remaining = %s, %s, want 6 both times", r1.Remaining, r2.Remaining)
		}
		WantLevel(t, h.Store, svc, 0, 4)
		MustSettle(t, h.Store, r1, 4)
		if _, err := h.Store.Reserve(ctx, Hold("retry", 4, time.Minute, svc)); !errors.Is(err, budget.ErrDuplicate) {
			t.Errorf("reserve after settle = %v, want ErrDuplicate", err)
		}
		WantLevel(t, h.Store, svc, 4, 0)
	})

	t.Run("HoldChargesTheWindowItReservedIn", func(t *testing.T) {
		h := newH(t)
		day1 := time.Date(2026, 11, 27, 23, 59, 59, 0, time.UTC)
		h.Clock.Set(day1)
		r := MustReserve(t, h.Store, Hold("midnight", 5, 10*time.Minute, svc))
		h.Clock.Set(day1.Add(2 * time.Second))
		WantLevel(t, h.Store, svc, 0, 0) // the new day starts empty
		MustSettle(t, h.Store, r, 3)
		WantLevel(t, h.Store, svc, 0, 0)
		h.Clock.Set(day1)
		WantLevel(t, h.Store, svc, 3, 0)
	})
}
