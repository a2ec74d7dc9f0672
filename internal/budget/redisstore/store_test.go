package redisstore

import (
	"context"
	"errors"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"
	"github.com/clade-gateway/clade-gateway/internal/testproc"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// newPrivateStore returns a store on its own redis-server, for tests that
// stop or empty the server.
func newPrivateStore(t *testing.T, opts storeopts.Options) (*Store, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t)
	s, err := New(redistest.Client(t, srv.Addr()), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, srv
}

// everyOp runs each store operation once and returns their errors by name.
func everyOp(s *Store, r budget.Reservation, b budget.Budget) map[string]error {
	ctx := context.Background()
	_, reserveErr := s.Reserve(ctx, storetest.Hold("probe", 1, time.Minute, b))
	_, statusErr := s.Status(ctx, []budget.Budget{b})
	return map[string]error{
		"reserve": reserveErr,
		"settle":  s.Settle(ctx, r, 1),
		"extend":  s.Extend(ctx, r, time.Minute),
		"status":  statusErr,
		"adjust":  s.Adjust(ctx, b, 1),
		"ping":    s.Ping(ctx),
	}
}

func TestRedisStoppedIsUnavailableWithinTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	clock := storetest.NewClock(storetest.T0)
	b := storetest.Bud(budget.ScopeService, "s", budget.Daily, 100, true)
	for _, mode := range []string{"killed", "paused"} {
		t.Run(mode, func(t *testing.T) {
			s, srv := newPrivateStore(t, storeopts.Options{Clock: clock.Now, Timeout: timeout})
			r := storetest.MustReserve(t, s, storetest.Hold("before", 5, time.Minute, b))
			if mode == "killed" {
				srv.Stop()
			} else {
				srv.Signal(syscall.SIGSTOP)
				defer srv.Signal(syscall.SIGCONT)
			}
			for op, err := range everyOp(s, r, b) {
				if !errors.Is(err, budget.ErrUnavailable) {
					t.Errorf("%s with Redis %s: err = %v, want ErrUnavailable", op, mode, err)
				}
			}
			// The bound itself, measured once per call; generous because
			// the machine is shared, but far below go-redis's 3s default.
			start := time.Now()
			_, err := s.Reserve(context.Background(), storetest.Hold("timed", 1, time.Minute, b))
			if took := time.Since(start); !errors.Is(err, budget.ErrUnavailable) || took > 4*timeout {
				t.Errorf("Reserve took %v (timeout %v), err %v", took, timeout, err)
			}
		})
	}
}

func TestRedisUnreachableAtStartFailsClosedThenWorks(t *testing.T) {
	port := testproc.Port(t)
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	s, err := New(c, storeopts.Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("NewRedis with Redis down: %v", err)
	}
	defer s.Close()
	b := storetest.Bud(budget.ScopeService, "s", budget.Daily, 10, true)
	if _, err := s.Reserve(context.Background(), storetest.Hold("r", 1, time.Minute, b)); !errors.Is(err, budget.ErrUnavailable) {
		t.Errorf("Reserve with Redis down = %v, want ErrUnavailable", err)
	}
	redistest.StartOn(t, port)
	// A request that failed is refused for good; the next one gets a new ID.
	storetest.MustReserve(t, s, storetest.Hold("r2", 1, time.Minute, b))
}

// TestRedisReleaseOfLostReserve covers what release leaves behind, in each
// order it can race with the lost reserve and with a later settlement.
func TestRedisReleaseOfLostReserve(t *testing.T) {
	h := redisHarness(t)
	s := h.Store.(*Store)
	ctx := context.Background()
	b := storetest.Bud(budget.ScopeService, "rel", budget.Daily, 10, true)
	release := func(id string) {
		s.bg.Add(1)
		s.release(id, []string{b.Key(storetest.T0)})
	}

	// The reserve ran but its reply was lost: the hold is freed at once.
	storetest.MustReserve(t, s, storetest.Hold("placed", 6, time.Minute, b))
	release("placed")
	storetest.WantLevel(t, s, b, 0, 0)

	// The release ran first: the late reserve places nothing.
	release("late")
	if _, err := s.Reserve(ctx, storetest.Hold("late", 6, time.Minute, b)); !errors.Is(err, budget.ErrDuplicate) {
		t.Errorf("late reserve after release = %v, want ErrDuplicate", err)
	}
	storetest.WantLevel(t, s, b, 0, 0)

	// on_store_failure=allow forwarded both anyway and journaled their
	// usage: each is charged once, in full.
	for _, id := range []string{"placed", "late"} {
		r := budget.Reservation{RequestID: id, Keys: []string{b.Key(storetest.T0)}}
		storetest.MustSettle(t, s, r, 2)
		storetest.MustSettle(t, s, r, 2)
	}
	storetest.WantLevel(t, s, b, 4, 0)
	release("placed") // a release after settlement changes nothing
	storetest.WantLevel(t, s, b, 4, 0)

	// A hold already charged as an orphan is refunded by its release.
	storetest.MustReserve(t, s, storetest.Hold("orphan", 3, time.Minute, b))
	h.Clock.Add(2 * time.Minute)
	storetest.WantLevel(t, s, b, 7, 0)
	release("orphan")
	storetest.WantLevel(t, s, b, 4, 0)
}

func TestNewRedisRequiresContextTimeouts(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := New(c, storeopts.Options{}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("NewRedis without ContextTimeoutEnabled = %v, want ErrInvalid", err)
	}
	if _, err := New(redistest.Client(t, "127.0.0.1:1"), storeopts.Options{Prefix: "a{b}"}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("NewRedis with braces in the prefix = %v, want ErrInvalid", err)
	}
}

func TestNewRedisWarnsAboutEviction(t *testing.T) {
	for _, policy := range []string{"noeviction", "volatile-lru"} {
		t.Run(policy, func(t *testing.T) {
			srv := redistest.Start(t, "--maxmemory-policy", policy)
			core, logs := observer.New(zap.ErrorLevel)
			s, err := New(redistest.Client(t, srv.Addr()), storeopts.Options{Logger: zap.New(core), Timeout: storetest.Timeout})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			warned := logs.FilterMessageSnippet("maxmemory-policy noeviction").Len() == 1
			if warned != (policy != "noeviction") {
				t.Errorf("policy %s: warned = %v", policy, warned)
			}
		})
	}
}
