package boltstore

import (
	"context"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

func TestLedgerBolt(t *testing.T) { storetest.RunLedger(t, boltHarness) }

func TestLedgerRetentionBolt(t *testing.T) {
	h := boltHarness(t)
	s := h.Store.(*Store)
	hour := storetest.T0.Truncate(time.Hour)
	storetest.MustSettle(t, s, budget.Reservation{RequestID: "old", Ledger: storetest.LedgerLines(hour, "w", "m", 9)}, 9)
	h.Clock.Add(budget.DefaultLedgerRetention + time.Hour)
	// The embedded store collects garbage while it reserves.
	svc := storetest.Bud(budget.ScopeService, "gc", budget.Daily, 1_000_000, true)
	storetest.MustSettle(t, s, storetest.MustReserve(t, s, storetest.Hold("new", 5, time.Minute, svc)), 5)
	got, err := s.Ledger(context.Background(), hour, hour.Add(time.Hour))
	if err != nil || len(got) != 0 {
		t.Errorf("ledger of an hour past retention: %v, %v; want it gone", got, err)
	}
}
