package redisstore

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/grant"
	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

func TestGrantAdmitsThroughAPauseThenRefusesWithoutTheExactPath(t *testing.T) {
	srv := redistest.Start(t)
	h := newRedisGrants(t, srv.Addr())
	h.opts.Timeout = 300 * time.Millisecond // the replica's; the checks use storetest.Timeout
	svc := storetest.Bud(budget.ScopeService, "paused", budget.Daily, 1_000_000, true)
	g := h.replica(t)
	defer g.Close()
	before := storetest.MustReserve(t, g, storetest.Hold("before", 10, time.Minute, svc))
	srv.Signal(syscall.SIGSTOP)
	defer srv.Signal(syscall.SIGCONT)
	// Redis cannot answer, but the grant it placed still covers this one.
	during := storetest.MustReserve(t, g, storetest.Hold("during", 10, time.Minute, svc))
	if !during.InMemory() {
		t.Fatal("a request during the pause did not draw on the grant")
	}
	// With less than a third of the lease left, draws stop; the step that
	// would renew the grant cannot reach Redis, and that is the answer:
	// the per-request path would wait for the same Redis.
	h.clock.Add(45 * time.Second)
	if _, err := g.Reserve(context.Background(), storetest.Hold("late", 10, time.Minute, svc)); !errors.Is(err, budget.ErrUnavailable) {
		t.Fatalf("reserve with the lease running out and Redis paused: %v, want ErrUnavailable", err)
	}
	srv.Signal(syscall.SIGCONT)
	storetest.MustSettle(t, g, before, 7)
	storetest.MustSettle(t, g, during, 8)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.WantLevel(t, h.plain, svc, 15, 0)
	// The refused request never held anything under its own ID.
	if n, err := redistest.Client(t, srv.Addr()).Exists(context.Background(), h.plain.keys.hold("late")).Result(); err != nil || n != 0 {
		t.Errorf("hold record of the refused request: %d, %v", n, err)
	}
}

// redisGrants is a keyspace on the Redis at addr, on a fake clock, where
// replicas admit from grants; plain reads the levels and the keys.
type redisGrants struct {
	clock *storetest.Clock
	addr  string
	opts  storeopts.Options
	plain *Store
}

func newRedisGrants(t *testing.T, addr string) redisGrants {
	clock := storetest.NewClock(storetest.T0)
	opts := storeopts.Options{Prefix: redistest.Prefix(t), Clock: clock.Now, Timeout: storetest.Timeout}
	redistest.DropPrefix(t, redistest.Client(t, addr), opts.Prefix)
	plain, err := New(redistest.Client(t, addr), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plain.Close() })
	return redisGrants{clock: clock, addr: addr, opts: opts, plain: plain}
}

// replica opens a Granted store on a store of its own; the test closes it.
func (h redisGrants) replica(t *testing.T) *grant.Granted {
	s, err := New(redistest.Client(t, h.addr), h.opts)
	if err != nil {
		t.Fatal(err)
	}
	g, err := grant.New(s, grant.Options{Window: 100 * time.Millisecond, Lease: time.Minute, Flush: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return g
}
