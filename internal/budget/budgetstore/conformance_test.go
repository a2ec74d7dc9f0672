package budgetstore

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the rollover cases need a real zone on any machine

	"github.com/clade-gateway/clade-gateway/internal/budget/storemetrics"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// conformStore is everything both stores offer.
type conformStore interface {
	budget.Store
	Reinit(ctx context.Context) error
	ClaimNotification(ctx context.Context, key string, ttl time.Duration) (bool, error)
	TryLock(ctx context.Context, name string, ttl time.Duration) (bool, error)
	PutRecord(ctx context.Context, kind, id string, v []byte) error
	GetRecord(ctx context.Context, kind, id string) ([]byte, bool, error)
	DeleteRecord(ctx context.Context, kind, id string) error
	ListRecords(ctx context.Context, kind string) (map[string][]byte, error)
}

var (
	_ conformStore = (*RedisStore)(nil)
	_ conformStore = (*BoltStore)(nil)
)

// fakeClock is the injected clock the tests drive.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is one fresh, empty store on a fake clock. replica returns
// another handle on the same data, as a second gateway replica would have.
type harness struct {
	clock   *fakeClock
	store   conformStore
	replica func(t *testing.T) conformStore
}

type newHarness func(t *testing.T) harness

// testTimeout replaces the 500ms default where a test checks behaviour,
// not latency: the machine running tests may be heavily shared.
const testTimeout = 10 * time.Second

// t0 is a Friday morning in UTC.
var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func redisHarness(t *testing.T) harness {
	clock := newFakeClock(t0)
	opts := Options{Prefix: uniquePrefix(t), Clock: clock.Now, Timeout: testTimeout}
	addr := sharedRedisAddr(t)
	dropPrefix(t, newClient(t, addr), opts.Prefix)
	mk := func(t *testing.T) conformStore {
		s, err := NewRedis(newClient(t, addr), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	return harness{clock: clock, store: mk(t), replica: mk}
}

func clusterHarness(t *testing.T) harness {
	clock := newFakeClock(t0)
	opts := Options{Prefix: uniquePrefix(t), Clock: clock.Now, Timeout: testTimeout}
	c := sharedCluster(t)
	dropPrefix(t, newClusterClient(t, c), opts.Prefix)
	mk := func(t *testing.T) conformStore {
		s, err := NewRedis(newClusterClient(t, c), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	return harness{clock: clock, store: mk(t), replica: mk}
}

func boltHarness(t *testing.T) harness {
	clock := newFakeClock(t0)
	s, err := OpenBolt(filepath.Join(t.TempDir(), "budget.db"), Options{Clock: clock.Now, Timeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return harness{clock: clock, store: s, replica: func(*testing.T) conformStore { return boltReplica(s) }}
}

// boltReplica is a second handle on the same file with its own lock owner
// and in-flight set: the embedded store serves one process, so this is as
// close to a second replica as it gets.
func boltReplica(s *BoltStore) *BoltStore {
	c := *s
	c.owner = s.owner + "-replica"
	c.flight = storemetrics.NewInFlight(s.opts.Clock)
	return &c
}

func TestConformanceRedis(t *testing.T)   { runConformance(t, redisHarness) }
func TestConformanceCluster(t *testing.T) { runConformance(t, clusterHarness) }
func TestConformanceBolt(t *testing.T)    { runConformance(t, boltHarness) }

func bud(scope budget.Scope, name string, p budget.Period, limit money.Nanos, enforce bool) budget.Budget {
	return budget.Budget{Scope: scope, Name: name, ID: string(p), Period: p, Limit: limit, Enforce: enforce}
}

func hold(id string, amt money.Nanos, ttl time.Duration, bs ...budget.Budget) budget.Hold {
	return budget.Hold{RequestID: id, Budgets: bs, Amount: amt, TTL: ttl}
}

func mustReserve(t *testing.T, s budget.Store, h budget.Hold) budget.Reservation {
	t.Helper()
	r, err := s.Reserve(context.Background(), h)
	if err != nil {
		t.Fatalf("Reserve(%s, %s): %v", h.RequestID, h.Amount, err)
	}
	return r
}

func mustExceed(t *testing.T, s budget.Store, h budget.Hold) *budget.ExceededError {
	t.Helper()
	_, err := s.Reserve(context.Background(), h)
	var ex *budget.ExceededError
	if !errors.As(err, &ex) || !errors.Is(err, budget.ErrOverBudget) {
		t.Fatalf("Reserve(%s, %s) = %v, want *ExceededError", h.RequestID, h.Amount, err)
	}
	return ex
}

func mustSettle(t *testing.T, s budget.Store, r budget.Reservation, actual money.Nanos) {
	t.Helper()
	if err := s.Settle(context.Background(), r, actual); err != nil {
		t.Fatalf("Settle(%s, %s): %v", r.RequestID, actual, err)
	}
}

// wantLevel checks a budget's current window.
func wantLevel(t *testing.T, s budget.Store, b budget.Budget, spent, reserved money.Nanos) {
	t.Helper()
	st, err := s.Status(context.Background(), []budget.Budget{b})
	if err != nil {
		t.Fatalf("Status(%s): %v", b.Label(), err)
	}
	if st[0].Spent != spent || st[0].Reserved != reserved {
		t.Errorf("%s: spent %s reserved %s, want spent %s reserved %s",
			b.Label(), st[0].Spent, st[0].Reserved, spent, reserved)
	}
}

func runConformance(t *testing.T, newH newHarness) {
	runAdmitConformance(t, newH)
	runSettleConformance(t, newH)
	runRecordsConformance(t, newH)
	runFitConformance(t, newH)
}
