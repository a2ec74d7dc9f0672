package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"
)

func TestLedgerRedis(t *testing.T)   { storetest.RunLedger(t, redisHarness) }
func TestLedgerCluster(t *testing.T) { storetest.RunLedger(t, clusterHarness) }

func TestLedgerRetentionRedis(t *testing.T) {
	h := redisHarness(t)
	s := h.Store.(*Store)
	hour := storetest.T0.Truncate(time.Hour)
	storetest.MustSettle(t, s, budget.Reservation{RequestID: "r", Ledger: storetest.LedgerLines(hour, "w", "m", 9)}, 9)
	ttl, err := s.rdb.TTL(context.Background(), s.keys.ledger(hour.Format(budget.LedgerHourFormat))).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := hour.Add(budget.DefaultLedgerRetention).Sub(storetest.T0)
	if ttl <= want-time.Minute || ttl > want {
		t.Errorf("ledger hour TTL %s, want about %s (400 days from its hour)", ttl, want)
	}
}
