package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"
	"github.com/clade-gateway/clade-gateway/internal/money"
)

func TestPrincipalsFirstSight(t *testing.T) { storetest.PrincipalsFirstSight(t, redisHarness) }

// TestPrincipalWindowExpiresInRedis: the TTL reaches Redis.
func TestPrincipalWindowExpiresInRedis(t *testing.T) {
	h := redisHarness(t)
	s := h.Store.(*Store)
	b := storetest.Principal("svc/claude_code.session/abc", budget.Total, money.USD(10))
	storetest.MustReserve(t, s, storetest.Hold("r1", money.USD(1), time.Minute, b))
	ttl, err := s.rdb.TTL(context.Background(), s.keys.window(b.Key(storetest.T0))).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := b.WindowKeyTTL(time.Time{}, storetest.T0)
	if ttl <= 0 || ttl > want || ttl < want-time.Minute {
		t.Fatalf("the session's total window expires in %v, want about %v", ttl, want)
	}
}
