package budgetstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

type ownerStore interface {
	budget.Store
	Owners(ctx context.Context, scope budget.Scope, prefix string) ([]string, error)
}

func principalBudget(name string, p budget.Period, limit money.Nanos) budget.Budget {
	return budget.Budget{Scope: budget.ScopePrincipal, Name: name, ID: string(p), Period: p, Limit: limit, Enforce: true}
}

// TestPrincipalsFirstSight: principals are created by the reserve that
// first names them, atomically, on both stores: 40 concurrent first
// requests of one new principal, each a third of its cap, admit exactly 3.
// Owners then lists each principal once, values with colons included, and
// only those of the service asked for.
func TestPrincipalsFirstSight(t *testing.T) {
	for name, mk := range map[string]storetest.NewHarness{"redis": redisHarness, "bolt": boltHarness} {
		t.Run(name, func(t *testing.T) {
			h := mk(t)
			s, ok := h.Store.(ownerStore)
			if !ok {
				t.Fatalf("%T has no Owners", h.Store)
			}
			ctx := context.Background()
			svc := storetest.Bud(budget.ScopeService, "svc", budget.Monthly, money.USD(1000), true)
			user := "svc/metadata.user_id/urn:user:42"
			var wg sync.WaitGroup
			var mu sync.Mutex
			admitted := 0
			for i := range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := s.Reserve(ctx, storetest.Hold(fmt.Sprintf("r%d", i), money.USD(1), time.Minute, svc,
						principalBudget(user, budget.Daily, money.USD(3)), principalBudget(user, budget.Monthly, money.USD(100))))
					if err == nil {
						mu.Lock()
						admitted++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if admitted != 3 {
				t.Fatalf("%d of 40 concurrent first requests admitted, the cap allows 3", admitted)
			}
			storetest.MustReserve(t, s, storetest.Hold("other", money.USD(1), time.Minute, storetest.Bud(budget.ScopeService, "svc2", budget.Monthly, money.USD(1000), true),
				principalBudget("svc2/metadata.user_id/u", budget.Daily, money.USD(3))))
			got, err := s.Owners(ctx, budget.ScopePrincipal, "svc/")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, []string{user}) {
				t.Fatalf("Owners = %q, want [%q]", got, user)
			}
		})
	}
}

// TestPrincipalWindowExpiresInRedis: the TTL reaches Redis.
func TestPrincipalWindowExpiresInRedis(t *testing.T) {
	h := redisHarness(t)
	s := h.Store.(*RedisStore)
	b := principalBudget("svc/claude_code.session/abc", budget.Total, money.USD(10))
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
