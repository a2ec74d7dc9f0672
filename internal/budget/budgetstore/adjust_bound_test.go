package budgetstore

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// An adjustment that would take a window's spend beyond ±MaxWindowSpend is
// refused with ErrAdjustRange and applies nothing, on every store; up to
// the bound, in either direction, it applies exactly. Redis checks in Lua
// doubles, exact to well under a cent at the bound, so past-the-bound
// steps are a cent or more.
func TestAdjustIsBounded(t *testing.T) {
	for name, newH := range map[string]newHarness{"redis": redisHarness, "bolt": boltHarness} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			h := newH(t)
			b := bud(budget.ScopeService, "svc", budget.Daily, money.USD(10), true)
			if err := h.store.Adjust(ctx, b, budget.MaxWindowSpend); err != nil {
				t.Fatalf("adjust to the bound: %v", err)
			}
			wantLevel(t, h.store, b, budget.MaxWindowSpend, 0)
			for _, d := range []money.Nanos{money.PerUSD / 100, budget.MaxWindowSpend, money.Nanos(math.MaxInt64), money.Nanos(math.MaxInt64 - int64(budget.MaxWindowSpend) + 1)} {
				if err := h.store.Adjust(ctx, b, d); !errors.Is(err, budget.ErrAdjustRange) {
					t.Errorf("adjust by %d past the bound: %v, want ErrAdjustRange", d, err)
				}
			}
			wantLevel(t, h.store, b, budget.MaxWindowSpend, 0)
			if err := h.store.Adjust(ctx, b, -2*budget.MaxWindowSpend); err != nil {
				t.Fatalf("adjust down to -bound: %v", err)
			}
			wantLevel(t, h.store, b, -budget.MaxWindowSpend, 0)
			for _, d := range []money.Nanos{-money.PerUSD / 100, money.Nanos(math.MinInt64), -budget.MaxWindowSpend} {
				if err := h.store.Adjust(ctx, b, d); !errors.Is(err, budget.ErrAdjustRange) {
					t.Errorf("adjust by %d past -bound: %v, want ErrAdjustRange", d, err)
				}
			}
			wantLevel(t, h.store, b, -budget.MaxWindowSpend, 0)
			// A refused adjustment leaves the store usable.
			if err := h.store.Adjust(ctx, b, budget.MaxWindowSpend); err != nil {
				t.Fatal(err)
			}
			h.clock.Add(time.Second)
			wantLevel(t, h.store, b, 0, 0)
		})
	}
}
