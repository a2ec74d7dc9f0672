package budgetstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the rollover cases need a real zone on any machine

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

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
	c.flight = newInFlight(s.opts.Clock)
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
	ctx := context.Background()
	svc := bud(budget.ScopeService, "search", budget.Daily, 10, true)
	team := bud(budget.ScopeTeam, "core", budget.Monthly, 5, true)
	ws := bud(budget.ScopeWorkspace, "prod", budget.Total, 100, true)

	t.Run("ReserveWithinAndOverLimitAllOrNothing", func(t *testing.T) {
		h := newH(t)
		s := h.store
		r1 := mustReserve(t, s, hold("r1", 3, time.Minute, svc, team))
		want := budget.Reservation{
			RequestID: "r1", Keys: []string{svc.Key(t0), team.Key(t0)}, Enforced: []bool{true, true},
			Amount: 3, Remaining: 2, HasRemaining: true,
		}
		if d := cmp.Diff(want, r1, cmpopts.IgnoreUnexported(budget.Reservation{})); d != "" {
			t.Errorf("reservation (-want +got):\n%s", d)
		}
		// svc has room for 3 more, team does not: neither may hold it.
		ex := mustExceed(t, s, hold("r2", 3, time.Minute, svc, team))
		_, teamEnd := team.Window(t0)
		if ex.Budget.Name != "core" || ex.Spent != 0 || ex.Reserved != 3 || !ex.ResetsAt.Equal(teamEnd) {
			t.Errorf("exceeded = %+v, want team core with 3 reserved resetting %v", ex, teamEnd)
		}
		wantLevel(t, s, svc, 0, 3)
		wantLevel(t, s, team, 0, 3)
		// Exactly at the limit is allowed; one nano more is not.
		r3 := mustReserve(t, s, hold("r3", 2, time.Minute, svc, team))
		if r3.Remaining != 0 || !r3.HasRemaining {
			t.Errorf("remaining at the limit = %s/%v, want 0/true", r3.Remaining, r3.HasRemaining)
		}
		mustExceed(t, s, hold("r4", 1, time.Minute, team))
		mustSettle(t, s, r1, 1)
		wantLevel(t, s, svc, 1, 2)
		wantLevel(t, s, team, 1, 2)
		mustReserve(t, s, hold("r5", 2, time.Minute, team))
		wantLevel(t, s, team, 1, 4)
	})

	t.Run("ZeroBudgetsAdmitAndRecordNothing", func(t *testing.T) {
		s := newH(t).store
		r := mustReserve(t, s, hold("free", 7, time.Minute))
		if r.HasRemaining || len(r.Keys) != 0 || r.RequestID != "free" {
			t.Errorf("reservation = %+v, want no keys and no remaining", r)
		}
		mustSettle(t, s, r, 7)
	})

	t.Run("DryRunCountsButNeverRefuses", func(t *testing.T) {
		s := newH(t).store
		dry := bud(budget.ScopeService, "canary", budget.Daily, 1, false)
		r1 := mustReserve(t, s, hold("d1", 5, time.Minute, dry, ws))
		if !r1.HasRemaining || r1.Remaining != 95 || r1.Enforced[0] || !r1.Enforced[1] {
			t.Errorf("reservation = %+v, want remaining 95 from the enforced budget only", r1)
		}
		r2 := mustReserve(t, s, hold("d2", 5, time.Minute, dry))
		if r2.HasRemaining {
			t.Errorf("dry-run only reservation has remaining %s", r2.Remaining)
		}
		wantLevel(t, s, dry, 0, 10)
		mustSettle(t, s, r1, 4)
		mustSettle(t, s, r2, 6)
		wantLevel(t, s, dry, 10, 0)
		wantLevel(t, s, ws, 4, 0)
	})

	t.Run("PeriodRollover", func(t *testing.T) {
		la, err := time.LoadLocation("America/Los_Angeles")
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name         string
			b            budget.Budget
			first, same  time.Time // same window
			next         time.Time // the following window
			wantKeyFirst string
			wantKeyNext  string
		}{
			{"daily", bud(budget.ScopeService, "s", budget.Daily, 5, true),
				time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 23, 59, 59, 999e6, time.UTC),
				time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), "service:s:daily:20261127", "service:s:daily:20261128"},
			{"weekly ISO Monday", bud(budget.ScopeTeam, "t", budget.Weekly, 5, true),
				time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 29, 23, 59, 0, 0, time.UTC),
				time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), "team:t:weekly:20261123", "team:t:weekly:20261130"},
			{"monthly", bud(budget.ScopeWorkspace, "w", budget.Monthly, 5, true),
				time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 28, 23, 0, 0, 0, time.UTC),
				time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), "workspace:w:monthly:20260201", "workspace:w:monthly:20260301"},
			{"daily in Los Angeles", budget.Budget{Scope: budget.ScopeService, Name: "la", ID: "daily", Period: budget.Daily, Limit: 5, Enforce: true, Location: la},
				time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), time.Date(2026, 11, 28, 7, 59, 0, 0, time.UTC),
				time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC), "service:la:daily:20261127", "service:la:daily:20261128"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := newH(t)
				s := h.store
				h.clock.Set(tc.first)
				r := mustReserve(t, s, hold("a", 4, time.Minute, tc.b))
				if r.Keys[0] != tc.wantKeyFirst {
					t.Errorf("key = %q, want %q", r.Keys[0], tc.wantKeyFirst)
				}
				mustSettle(t, s, r, 4)
				h.clock.Set(tc.same)
				mustExceed(t, s, hold("b", 2, time.Minute, tc.b))
				h.clock.Set(tc.next)
				r = mustReserve(t, s, hold("c", 2, time.Minute, tc.b))
				if r.Keys[0] != tc.wantKeyNext {
					t.Errorf("next key = %q, want %q", r.Keys[0], tc.wantKeyNext)
				}
				st, err := s.Status(ctx, []budget.Budget{tc.b})
				if err != nil {
					t.Fatal(err)
				}
				if !st[0].WindowStart.Equal(tc.next) || st[0].Spent != 0 || st[0].Reserved != 2 {
					t.Errorf("status after rollover = %+v, want a window starting %v with 2 reserved", st[0], tc.next)
				}
			})
		}
		t.Run("total never resets", func(t *testing.T) {
			h := newH(t)
			r := mustReserve(t, h.store, hold("a", 60, time.Minute, ws))
			mustSettle(t, h.store, r, 60)
			h.clock.Add(400 * 24 * time.Hour)
			mustExceed(t, h.store, hold("b", 41, time.Minute, ws))
			wantLevel(t, h.store, ws, 60, 0)
		})
	})

	t.Run("SettleIsIdempotent", func(t *testing.T) {
		h := newH(t)
		r := mustReserve(t, h.store, hold("once", 3, time.Minute, svc, team))
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(s budget.Store) {
				defer wg.Done()
				if err := s.Settle(ctx, r, 2); err != nil {
					t.Error(err)
				}
			}(h.replica(t))
		}
		wg.Wait()
		mustSettle(t, h.store, r, 2)
		wantLevel(t, h.store, svc, 2, 0)
		wantLevel(t, h.store, team, 2, 0)
	})

	t.Run("SettleAfterExpiryCorrectsOrphanCharge", func(t *testing.T) {
		for _, actual := range []money.Nanos{2, 5, 7, 0} {
			h := newH(t)
			s := h.store
			r := mustReserve(t, s, hold("slow", 5, time.Minute, svc, ws))
			h.clock.Add(time.Minute) // the lease ends exactly now
			wantLevel(t, s, svc, 5, 0)
			// The other window is charged the estimate too, before anyone reads it.
			wantLevel(t, s, ws, 5, 0)
			if err := s.Extend(ctx, r, time.Minute); err != nil {
				t.Fatalf("Extend of an expired hold: %v", err)
			}
			wantLevel(t, s, svc, 5, 0)
			mustSettle(t, s, r, actual)
			mustSettle(t, s, r, actual)
			wantLevel(t, s, svc, actual, 0)
			wantLevel(t, s, ws, actual, 0)
		}
	})

	t.Run("SettleOfExpiredUnprunedHoldChargesActual", func(t *testing.T) {
		h := newH(t)
		r := mustReserve(t, h.store, hold("late", 5, time.Minute, svc, ws))
		h.clock.Add(2 * time.Minute)
		mustSettle(t, h.store, r, 1) // nobody pruned in between
		wantLevel(t, h.store, svc, 1, 0)
		wantLevel(t, h.store, ws, 1, 0)
	})

	t.Run("SettleOfUnknownHoldChargesOnce", func(t *testing.T) {
		h := newH(t)
		// As the lead builds it for a request forwarded while the store was down.
		r := budget.Reservation{RequestID: "journaled", Keys: []string{svc.Key(t0), ws.Key(t0)}}
		mustSettle(t, h.store, r, 4)
		mustSettle(t, h.replica(t), r, 4)
		wantLevel(t, h.store, svc, 4, 0)
		wantLevel(t, h.store, ws, 4, 0)
		if _, err := h.store.Reserve(ctx, hold("journaled", 1, time.Minute, svc)); !errors.Is(err, budget.ErrDuplicate) {
			t.Errorf("reserve under a settled request ID = %v, want ErrDuplicate", err)
		}
	})

	t.Run("SettleUsesTheWindowsTheHoldIsOn", func(t *testing.T) {
		h := newH(t)
		r := mustReserve(t, h.store, hold("moved", 5, time.Minute, svc, ws))
		r.Keys = []string{svc.Key(t0)} // e.g. rebuilt by a caller that forgot one
		mustSettle(t, h.store, r, 3)
		wantLevel(t, h.store, svc, 3, 0)
		wantLevel(t, h.store, ws, 3, 0)
	})

	t.Run("ExpiredHoldStopsPinningTheBudget", func(t *testing.T) {
		// A replica dies holding 5 of 10 with an estimate far above what
		// it spent. Its lease ends: the hold no longer counts as live,
		// its estimate is charged (never undercount), and the late
		// settlement gives the difference back to other callers.
		h := newH(t)
		s, other := h.store, h.replica(t)
		r := mustReserve(t, s, hold("dead", 8, time.Minute, svc))
		mustExceed(t, other, hold("o1", 3, time.Minute, svc))
		h.clock.Add(61 * time.Second)
		wantLevel(t, other, svc, 8, 0)
		mustReserve(t, other, hold("o2", 2, time.Minute, svc))
		mustExceed(t, other, hold("o3", 1, time.Minute, svc))
		mustSettle(t, other, r, 1) // the journal replays the dead replica's usage
		wantLevel(t, other, svc, 1, 2)
		mustReserve(t, other, hold("o4", 7, time.Minute, svc))
	})

	t.Run("ManyExpiredHoldsPruneInBoundedSteps", func(t *testing.T) {
		// More holds than one call prunes (1000): the total admission sees
		// is exact at once, and the split settles on the next read.
		h := newH(t)
		big := bud(budget.ScopeService, "many", budget.Daily, 2000, true)
		const n = 1200
		var wg sync.WaitGroup
		for g := 0; g < 24; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := g; i < n; i += 24 {
					if _, err := h.store.Reserve(ctx, hold(fmt.Sprint("m", i), 1, time.Minute, big)); err != nil {
						t.Error(err)
						return
					}
				}
			}(g)
		}
		wg.Wait()
		h.clock.Add(time.Minute)
		st, err := h.store.Status(ctx, []budget.Budget{big})
		if err != nil {
			t.Fatal(err)
		}
		if st[0].Spent+st[0].Reserved != n || st[0].Spent < 1000 {
			t.Errorf("after one prune: spent %s reserved %s, want a total of %d with at least 1000 spent", st[0].Spent, st[0].Reserved, n)
		}
		mustExceed(t, h.store, hold("over", 2000-n+1, time.Minute, big))
		wantLevel(t, h.store, big, n, 0)
	})

	t.Run("ExtendKeepsHoldAlivePastTTL", func(t *testing.T) {
		h := newH(t)
		s := h.store
		r := mustReserve(t, s, hold("stream", 4, time.Minute, svc, ws))
		for i := 0; i < 3; i++ {
			h.clock.Add(50 * time.Second)
			if err := s.Extend(ctx, r, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		h.clock.Add(50 * time.Second) // 200s after a 60s lease
		wantLevel(t, s, svc, 0, 4)
		wantLevel(t, s, ws, 0, 4)
		// A shorter extension never cuts a lease short.
		if err := s.Extend(ctx, r, time.Second); err != nil {
			t.Fatal(err)
		}
		h.clock.Add(5 * time.Second)
		wantLevel(t, s, svc, 0, 4)
		mustSettle(t, s, r, 3)
		wantLevel(t, s, svc, 3, 0)
		wantLevel(t, s, ws, 3, 0)
	})

	t.Run("ReserveRetryIsNotDoubled", func(t *testing.T) {
		h := newH(t)
		r1 := mustReserve(t, h.store, hold("retry", 4, time.Minute, svc))
		r2 := mustReserve(t, h.store, hold("retry", 4, time.Minute, svc))
		if r1.Remaining != 6 || r2.Remaining != 6 {
			t.Errorf("remaining = %s, %s, want 6 both times", r1.Remaining, r2.Remaining)
		}
		wantLevel(t, h.store, svc, 0, 4)
		mustSettle(t, h.store, r1, 4)
		if _, err := h.store.Reserve(ctx, hold("retry", 4, time.Minute, svc)); !errors.Is(err, budget.ErrDuplicate) {
			t.Errorf("reserve after settle = %v, want ErrDuplicate", err)
		}
		wantLevel(t, h.store, svc, 4, 0)
	})

	t.Run("HoldChargesTheWindowItReservedIn", func(t *testing.T) {
		h := newH(t)
		day1 := time.Date(2026, 11, 27, 23, 59, 59, 0, time.UTC)
		h.clock.Set(day1)
		r := mustReserve(t, h.store, hold("midnight", 5, 10*time.Minute, svc))
		h.clock.Set(day1.Add(2 * time.Second))
		wantLevel(t, h.store, svc, 0, 0) // the new day starts empty
		mustSettle(t, h.store, r, 3)
		wantLevel(t, h.store, svc, 0, 0)
		h.clock.Set(day1)
		wantLevel(t, h.store, svc, 3, 0)
	})

	t.Run("AdjustAndStatus", func(t *testing.T) {
		h := newH(t)
		s := h.store
		if err := s.Adjust(ctx, svc, 4); err != nil {
			t.Fatal(err)
		}
		if err := s.Adjust(ctx, svc, -1); err != nil {
			t.Fatal(err)
		}
		r := mustReserve(t, s, hold("a", 2, time.Minute, svc))
		st, err := s.Status(ctx, []budget.Budget{svc, team})
		if err != nil {
			t.Fatal(err)
		}
		start, end := svc.Window(t0)
		if st[0].Spent != 3 || st[0].Reserved != 2 || st[0].Remaining() != 5 ||
			!st[0].WindowStart.Equal(start) || !st[0].ResetsAt.Equal(end) || st[0].Budget.Name != "search" {
			t.Errorf("status = %+v", st[0])
		}
		if st[1].Spent != 0 || st[1].Reserved != 0 || st[1].Remaining() != 5 {
			t.Errorf("untouched budget status = %+v", st[1])
		}
		// A credit larger than the spend makes it negative: -2 spent plus 2
		// held leaves exactly the limit.
		if err := s.Adjust(ctx, svc, -5); err != nil {
			t.Fatal(err)
		}
		wantLevel(t, s, svc, -2, 2)
		mustExceed(t, s, hold("b", 11, time.Minute, svc))
		mustReserve(t, s, hold("c", 10, time.Minute, svc))
		mustSettle(t, s, r, 2)
		wantLevel(t, s, svc, 0, 10)
	})

	t.Run("ExactBeyondFloatPrecision", func(t *testing.T) {
		// 2^53 nano-USD is about 9 million USD; above it a float64 cannot
		// tell limit from limit+1.
		big := bud(budget.ScopeWorkspace, "huge", budget.Total, 20_000_000*money.PerUSD+1, true)
		h := newH(t)
		if err := h.store.Adjust(ctx, big, big.Limit-10); err != nil {
			t.Fatal(err)
		}
		mustExceed(t, h.store, hold("a", 11, time.Minute, big))
		r := mustReserve(t, h.store, hold("b", 10, time.Minute, big))
		if r.Remaining != 0 {
			t.Errorf("remaining = %s, want 0", r.Remaining)
		}
		mustExceed(t, h.store, hold("c", 1, time.Minute, big))
		mustSettle(t, h.store, r, 9)
		wantLevel(t, h.store, big, big.Limit-1, 0)
		mustReserve(t, h.store, hold("d", 1, time.Minute, big))
	})

	t.Run("ClaimNotificationOnce", func(t *testing.T) {
		h := newH(t)
		a, b := h.store, h.replica(t)
		got := []bool{}
		for _, s := range []conformStore{a, b, a} {
			ok, err := s.ClaimNotification(ctx, "alert:service:search:daily:20261127:0.8", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ok)
		}
		if d := cmp.Diff([]bool{true, false, false}, got); d != "" {
			t.Errorf("claims (-want +got):\n%s", d)
		}
		h.clock.Add(time.Hour)
		if ok, err := b.ClaimNotification(ctx, "alert:service:search:daily:20261127:0.8", time.Hour); err != nil || !ok {
			t.Errorf("claim after expiry = %v, %v, want true", ok, err)
		}
	})

	t.Run("RecordsAndLocks", func(t *testing.T) {
		h := newH(t)
		a, b := h.store, h.replica(t)
		if err := a.PutRecord(ctx, "batch", "msgbatch_1", []byte(`{"service":"search"}`)); err != nil {
			t.Fatal(err)
		}
		if err := a.PutRecord(ctx, "batch", "msgbatch_2", []byte("two")); err != nil {
			t.Fatal(err)
		}
		v, ok, err := b.GetRecord(ctx, "batch", "msgbatch_1")
		if err != nil || !ok || string(v) != `{"service":"search"}` {
			t.Errorf("GetRecord = %q, %v, %v", v, ok, err)
		}
		if _, ok, err := b.GetRecord(ctx, "batch", "missing"); err != nil || ok {
			t.Errorf("GetRecord(missing) = %v, %v", ok, err)
		}
		if err := b.DeleteRecord(ctx, "batch", "msgbatch_2"); err != nil {
			t.Fatal(err)
		}
		if err := b.DeleteRecord(ctx, "batch", "never"); err != nil {
			t.Fatal(err)
		}
		all, err := a.ListRecords(ctx, "batch")
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(map[string][]byte{"msgbatch_1": []byte(`{"service":"search"}`)}, all); d != "" {
			t.Errorf("ListRecords (-want +got):\n%s", d)
		}
		if all, err := a.ListRecords(ctx, "none"); err != nil || len(all) != 0 {
			t.Errorf("ListRecords(none) = %v, %v", all, err)
		}

		lock := func(s conformStore) bool {
			ok, err := s.TryLock(ctx, "batch-poller", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		got := []bool{lock(a), lock(b), lock(a)} // the holder renews
		h.clock.Add(59 * time.Second)
		got = append(got, lock(b))
		h.clock.Add(61 * time.Second) // past a's renewed lease
		got = append(got, lock(b), lock(a))
		if d := cmp.Diff([]bool{true, false, true, false, true, false}, got); d != "" {
			t.Errorf("locks (-want +got):\n%s", d)
		}
	})

	t.Run("InvalidCalls", func(t *testing.T) {
		s := newH(t).store
		cases := []struct {
			name string
			err  error
		}{
			{"no request ID", func() error { _, err := s.Reserve(ctx, hold("", 1, time.Minute, svc)); return err }()},
			{"negative amount", func() error { _, err := s.Reserve(ctx, hold("n", -1, time.Minute, svc)); return err }()},
			{"budget twice", func() error { _, err := s.Reserve(ctx, hold("n", 1, time.Minute, svc, svc)); return err }()},
			{"negative actual", s.Settle(ctx, budget.Reservation{RequestID: "x", Keys: []string{"k"}}, -1)},
			{"settle without ID", s.Settle(ctx, budget.Reservation{Keys: []string{"k"}}, 1)},
		}
		for _, tc := range cases {
			if !errors.Is(tc.err, budget.ErrInvalid) {
				t.Errorf("%s: err = %v, want ErrInvalid", tc.name, tc.err)
			}
		}
		wantLevel(t, s, svc, 0, 0)
	})

	runFitConformance(t, newH)
}
