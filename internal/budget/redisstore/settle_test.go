package redisstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// Concurrent settlements share settle.lua calls, and each is still
// exact: a request settled twice at once is charged once, and one whose
// caller names the wrong windows is settled where its hold is.
func TestRedisConcurrentSettlesShareCalls(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	c := redistest.Client(t, srv.Addr())
	rt := &roundTrips{}
	c.AddHook(rt)
	s, err := New(c, storeopts.Options{Clock: storetest.NewClock(storetest.T0).Now, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	svc := storetest.Bud(budget.ScopeService, "svc", budget.Daily, money.USD(1000), true)
	team := storetest.Bud(budget.ScopeTeam, "team", budget.Monthly, money.USD(1000), true)
	other := storetest.Bud(budget.ScopeService, "other", budget.Daily, money.USD(1000), true)

	const n = 200
	rs := make([]budget.Reservation, n)
	for i := range rs {
		rs[i] = storetest.MustReserve(t, s, storetest.Hold(fmt.Sprintf("req-%d", i), 10, time.Minute, svc, team))
	}
	// Request 0 is settled twice at once; request 1's caller names the
	// wrong windows (as after a policy change moved its budgets).
	jobs := append([]budget.Reservation{rs[0]}, rs...)
	jobs[2].Keys = []string{other.Key(storetest.T0)}

	before := rt.n.Load()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, len(jobs))
	for _, r := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- s.Settle(ctx, r, 7)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("settle: %v", err)
		}
	}
	calls := rt.n.Load() - before
	if calls >= int64(len(jobs)) {
		t.Errorf("%d concurrent settlements took %d calls: none were combined", len(jobs), calls)
	}
	t.Logf("%d concurrent settlements in %d calls", len(jobs), calls)
	storetest.WantLevel(t, s, svc, n*7, 0)
	storetest.WantLevel(t, s, team, n*7, 0)
	storetest.WantLevel(t, s, other, 0, 0)
	if got := s.flight.Count(); got != 0 {
		t.Errorf("%v holds still tracked in flight after every settle", got)
	}
}
