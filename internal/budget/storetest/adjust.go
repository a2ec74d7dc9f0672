package storetest

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// AdjustIsBounded: an adjustment that would take a window's spend beyond
// ±MaxWindowSpend is refused with ErrAdjustRange and applies nothing, on
// every store; up to the bound, in either direction, it applies exactly.
// Redis checks in Lua doubles, exact to well under a cent at the bound,
// so past-the-bound steps are a cent or more.
func AdjustIsBounded(t *testing.T, newH NewHarness) {
	ctx := context.Background()
	h := newH(t)
	b := Bud(budget.ScopeService, "svc", budget.Daily, money.USD(10), true)
	if err := h.Store.Adjust(ctx, b, budget.MaxWindowSpend); err != nil {
		t.Fatalf("adjust to the bound: %v", err)
	}
	WantLevel(t, h.Store, b, budget.MaxWindowSpend, 0)
	for _, d := range []money.Nanos{money.PerUSD / 100, budget.MaxWindowSpend, money.Nanos(math.MaxInt64), money.Nanos(math.MaxInt64 - int64(budget.MaxWindowSpend) + 1)} {
		if err := h.Store.Adjust(ctx, b, d); !errors.Is(err, budget.ErrAdjustRange) {
			t.Errorf("adjust by %d past the bound: %v, want ErrAdjustRange", d, err)
		}
	}
	WantLevel(t, h.Store, b, budget.MaxWindowSpend, 0)
	if err := h.Store.Adjust(ctx, b, -2*budget.MaxWindowSpend); err != nil {
		t.Fatalf("adjust down to -bound: %v", err)
	}
	WantLevel(t, h.Store, b, -budget.MaxWindowSpend, 0)
	for _, d := range []money.Nanos{-money.PerUSD / 100, money.Nanos(math.MinInt64), -budget.MaxWindowSpend} {
		if err := h.Store.Adjust(ctx, b, d); !errors.Is(err, budget.ErrAdjustRange) {
			t.Errorf("adjust by %d past -bound: %v, want ErrAdjustRange", d, err)
		}
	}
	WantLevel(t, h.Store, b, -budget.MaxWindowSpend, 0)
	// A refused adjustment leaves the store usable.
	if err := h.Store.Adjust(ctx, b, budget.MaxWindowSpend); err != nil {
		t.Fatal(err)
	}
	h.Clock.Add(time.Second)
	WantLevel(t, h.Store, b, 0, 0)
}
