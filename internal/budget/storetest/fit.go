package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// FitHold is a hold of amt for a minute on bs, fitted by f.
func FitHold(id string, amt money.Nanos, f budget.Fit, bs ...budget.Budget) budget.Hold {
	return budget.Hold{RequestID: id, Budgets: bs, Amount: amt, TTL: time.Minute, Fit: f}
}

// runFitConformance is the part of the conformance suite about fitted
// holds; every store runs it.
func runFitConformance(t *testing.T, newH NewHarness) {
	ctx := context.Background()
	svc := Bud(budget.ScopeService, "agent", budget.Daily, 10_000, true)
	team := Bud(budget.ScopeTeam, "core", budget.Monthly, 8_000, true)
	dry := Bud(budget.ScopeWorkspace, "prod", budget.Total, 1, false)
	f := budget.Fit{Fixed: 1_000, PerUnit: 7, Min: 100, Max: 5_000}

	t.Run("FitPlacesTheLargestAmountThatFits", func(t *testing.T) {
		h := newH(t)
		MustReserve(t, h.Store, Hold("other", 3_000, time.Minute, svc))
		// 7,000 left: 1,000 + 857 × 7 = 6,999 fits, 858 units would not.
		r := MustReserve(t, h.Store, FitHold("fit", 9_000, f, svc, dry))
		if r.Amount != 6_999 || r.Fitted != 857 || r.Remaining != 1 || !r.HasRemaining {
			t.Errorf("fitted reservation = amount %s, %d units, remaining %s; want 6999, 857, 1", r.Amount, r.Fitted, r.Remaining)
		}
		WantLevel(t, h.Store, svc, 0, 9_999)
		WantLevel(t, h.Store, dry, 0, 6_999)
		// A retry finds the fitted hold and reports it again.
		again := MustReserve(t, h.Store, FitHold("fit", 9_000, f, svc, dry))
		if again.Amount != 6_999 || again.Fitted != 857 {
			t.Errorf("retry = amount %s, %d units; want the fitted hold again", again.Amount, again.Fitted)
		}
		WantLevel(t, h.Store, svc, 0, 9_999)
		MustSettle(t, h.Store, r, 500)
		WantLevel(t, h.Store, svc, 500, 3_000)
	})

	t.Run("FitLeavesAHoldThatFitsAlone", func(t *testing.T) {
		h := newH(t)
		r := MustReserve(t, h.Store, FitHold("whole", 9_000, f, svc))
		if r.Amount != 9_000 || r.Fitted != 0 {
			t.Errorf("reservation = amount %s, %d units; want 9000 unfitted", r.Amount, r.Fitted)
		}
	})

	t.Run("FitTakesTheTightestEnforcedBudget", func(t *testing.T) {
		h := newH(t)
		MustReserve(t, h.Store, Hold("other", 1_000, time.Minute, team))
		// svc has 10,000 left, team 7,000: (7,000 - 1,000) / 7 = 857.
		r := MustReserve(t, h.Store, FitHold("fit", 9_000, f, svc, team))
		if r.Fitted != 857 || r.Amount != 6_999 {
			t.Errorf("fitted = %d units, %s; want 857, 6999", r.Fitted, r.Amount)
		}
		WantLevel(t, h.Store, svc, 0, 6_999)
		WantLevel(t, h.Store, team, 0, 7_999)
	})

	t.Run("FitBelowTheFloorIsRefused", func(t *testing.T) {
		h := newH(t)
		// 1,692 left: 99 units (1,693) would be needed at least 100.
		MustReserve(t, h.Store, Hold("other", 8_308, time.Minute, svc))
		ex := MustExceed(t, h.Store, FitHold("fit", 9_000, f, svc, team))
		if ex.Budget.Name != "agent" || ex.Reserved != 8_308 {
			t.Errorf("exceeded = %+v, want the service budget with 8308 reserved", ex)
		}
		WantLevel(t, h.Store, svc, 0, 8_308)
		WantLevel(t, h.Store, team, 0, 0)
		// Exactly the floor fits.
		if err := h.Store.Adjust(ctx, svc, -8); err != nil {
			t.Fatal(err)
		}
		r := MustReserve(t, h.Store, FitHold("floor", 9_000, f, svc, team))
		if r.Fitted != 100 || r.Amount != 1_700 {
			t.Errorf("at the floor = %d units, %s; want 100, 1700", r.Fitted, r.Amount)
		}
	})

	t.Run("FitWhenTheFixedPartAloneDoesNotFit", func(t *testing.T) {
		h := newH(t)
		MustReserve(t, h.Store, Hold("other", 9_500, time.Minute, svc))
		ex := MustExceed(t, h.Store, FitHold("fit", 9_000, budget.Fit{Fixed: 600, PerUnit: 1, Min: 1, Max: 8_400}, svc))
		if ex.Reserved != 9_500 {
			t.Errorf("exceeded = %+v", ex)
		}
		WantLevel(t, h.Store, svc, 0, 9_500)
	})

	t.Run("FitOverspentBudgetRefuses", func(t *testing.T) {
		h := newH(t)
		if err := h.Store.Adjust(ctx, svc, 12_000); err != nil {
			t.Fatal(err)
		}
		_ = MustExceed(t, h.Store, FitHold("fit", 9_000, f, svc))
		WantLevel(t, h.Store, svc, 12_000, 0)
	})

	t.Run("FitExactBeyondFloatPrecision", func(t *testing.T) {
		h := newH(t)
		big := Bud(budget.ScopeService, "big", budget.Total, 9_000_000_000_000_001, true)
		if err := h.Store.Adjust(ctx, big, 9_000_000_000_000_001-10_001); err != nil {
			t.Fatal(err)
		}
		r := MustReserve(t, h.Store, FitHold("fit", 20_000, budget.Fit{Fixed: 1, PerUnit: 3, Min: 1, Max: 6_666}, big))
		if r.Fitted != 3_333 || r.Amount != 10_000 || r.Remaining != 1 {
			t.Errorf("fitted = %d units, %s, remaining %s; want 3333, 10000, 1", r.Fitted, r.Amount, r.Remaining)
		}
	})

	t.Run("FitRaceOnTheLastDollarNeverOvershoots", func(t *testing.T) {
		h := newH(t)
		last := Bud(budget.ScopeService, "last", budget.Daily, money.USD(20), true)
		if err := h.Store.Adjust(ctx, last, money.USD(19)); err != nil {
			t.Fatal(err)
		}
		// 32 replicas each ask for $0.64 on the last dollar, fitting down
		// to $0.098 + 1,024 output tokens.
		af := budget.Fit{Fixed: 97_680_000, PerUnit: 15_000, Min: 1_024, Max: 32_000}
		const n = 32
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			placed money.Nanos
			admits int
		)
		for i := 0; i < n; i++ {
			s := h.Replica(t)
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := s.Reserve(ctx, FitHold(fmt.Sprintf("race-%d", i), 577_680_000, af, last))
				var ex *budget.ExceededError
				switch {
				case err == nil:
					if whole := r.Fitted == 0 && r.Amount == 577_680_000; !whole && (r.Fitted < af.Min || r.Amount != af.Amount(r.Fitted)) {
						t.Errorf("admitted %+v", r)
					}
					mu.Lock()
					placed += r.Amount
					admits++
					mu.Unlock()
				case errors.As(err, &ex):
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if placed > money.USD(1) {
			t.Fatalf("replicas placed %s on the last $1", placed)
		}
		// Whatever is left is less than the smallest useful hold.
		if left := money.USD(1) - placed; left >= af.Amount(af.Min) {
			t.Errorf("%d admitted, %s left unused: room for another", admits, left)
		}
		WantLevel(t, h.Store, last, money.USD(19), placed)
		t.Logf("%d of %d admitted, %s of $1 held", admits, n, placed)
	})

	t.Run("FitInvalid", func(t *testing.T) {
		s := newH(t).Store
		for _, bad := range []budget.Fit{
			{Fixed: 1, PerUnit: 1, Min: 0, Max: 5},
			{Fixed: 1, PerUnit: 1, Min: 6, Max: 5},
			{Fixed: -1, PerUnit: 1, Min: 1, Max: 5},
			{Fixed: 1, PerUnit: 1 << 40, Min: 1, Max: 1 << 20},
		} {
			if _, err := s.Reserve(ctx, FitHold("bad", 10, bad, svc)); !errors.Is(err, budget.ErrInvalid) {
				t.Errorf("fit %+v: err = %v, want ErrInvalid", bad, err)
			}
		}
	})
}
