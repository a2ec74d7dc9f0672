package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
)

// ownerStore is a store that lists the owners of its windows.
type ownerStore interface {
	budget.Store
	Owners(ctx context.Context, scope budget.Scope, prefix string) ([]string, error)
}

// Principal is an enforced principal's budget with its period as its ID.
func Principal(name string, p budget.Period, limit money.Nanos) budget.Budget {
	return budget.Budget{Scope: budget.ScopePrincipal, Name: name, ID: string(p), Period: p, Limit: limit, Enforce: true}
}

// PrincipalsFirstSight: principals are created by the reserve that
// first names them, atomically, on every store: 40 concurrent first
// requests of one new principal, each a third of its cap, admit exactly 3.
// Owners then lists each principal once, values with colons included, and
// only those of the service asked for.
func PrincipalsFirstSight(t *testing.T, newH NewHarness) {
	h := newH(t)
	s, ok := h.Store.(ownerStore)
	if !ok {
		t.Fatalf("%T has no Owners", h.Store)
	}
	ctx := context.Background()
	svc := Bud(budget.ScopeService, "svc", budget.Monthly, money.USD(1000), true)
	user := "svc/metadata.user_id/urn:user:42"
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Reserve(ctx, Hold(fmt.Sprintf("r%d", i), money.USD(1), time.Minute, svc,
				Principal(user, budget.Daily, money.USD(3)), Principal(user, budget.Monthly, money.USD(100))))
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
	MustReserve(t, s, Hold("other", money.USD(1), time.Minute, Bud(budget.ScopeService, "svc2", budget.Monthly, money.USD(1000), true),
		Principal("svc2/metadata.user_id/u", budget.Daily, money.USD(3))))
	got, err := s.Owners(ctx, budget.ScopePrincipal, "svc/")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{user}) {
		t.Fatalf("Owners = %q, want [%q]", got, user)
	}
}
