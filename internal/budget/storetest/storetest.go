// Package storetest is the conformance suite every budget store runs: Run
// takes a NewHarness that opens a fresh, empty store on a Clock the suite
// drives, and checks the Store contract (admission all or nothing, windows,
// settlement once per request, orphans, leases, adjustments, exactness,
// fits) and the records, claims and locks the stores also keep.
//
// Beside Run, each store's tests run the scenarios below on the same
// harness: the invariants under concurrency and random interleavings, the
// spend ledger, principals, bounded adjustments and the store metrics; and
// the helpers the stores', grants' and journal's tests share.
package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the rollover cases need a real zone on any machine

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
)

// Store is everything a budget store offers: the budget.Store contract,
// Reinit, and the claims, locks and records kept beside the budgets.
type Store interface {
	budget.Store
	Reinit(ctx context.Context) error
	ClaimNotification(ctx context.Context, key string, ttl time.Duration) (bool, error)
	TryLock(ctx context.Context, name string, ttl time.Duration) (bool, error)
	PutRecord(ctx context.Context, kind, id string, v []byte) error
	GetRecord(ctx context.Context, kind, id string) ([]byte, bool, error)
	DeleteRecord(ctx context.Context, kind, id string) error
	ListRecords(ctx context.Context, kind string) (map[string][]byte, error)
}

// Clock is the injected clock the suite drives.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Harness is one fresh, empty store on a Clock. Replica returns
// another handle on the same data, as a second gateway replica would have.
type Harness struct {
	Clock   *Clock
	Store   Store
	Replica func(t *testing.T) Store
}

// NewHarness opens a Harness for one test.
type NewHarness func(t *testing.T) Harness

// T0 is a Friday morning in UTC, where every Harness clock starts.
var T0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// Bud is a budget with its period as its ID.
func Bud(scope budget.Scope, name string, p budget.Period, limit money.Nanos, enforce bool) budget.Budget {
	return budget.Budget{Scope: scope, Name: name, ID: string(p), Period: p, Limit: limit, Enforce: enforce}
}

// Hold is a hold of amt for ttl on bs.
func Hold(id string, amt money.Nanos, ttl time.Duration, bs ...budget.Budget) budget.Hold {
	return budget.Hold{RequestID: id, Budgets: bs, Amount: amt, TTL: ttl}
}

// MustReserve reserves h or fails the test.
func MustReserve(t *testing.T, s budget.Store, h budget.Hold) budget.Reservation {
	t.Helper()
	r, err := s.Reserve(context.Background(), h)
	if err != nil {
		t.Fatalf("Reserve(%s, %s): %v", h.RequestID, h.Amount, err)
	}
	return r
}

// MustExceed reserves h and fails the test unless it is refused as over budget.
func MustExceed(t *testing.T, s budget.Store, h budget.Hold) *budget.ExceededError {
	t.Helper()
	_, err := s.Reserve(context.Background(), h)
	var ex *budget.ExceededError
	if !errors.As(err, &ex) || !errors.Is(err, budget.ErrOverBudget) {
		t.Fatalf("Reserve(%s, %s) = %v, want *ExceededError", h.RequestID, h.Amount, err)
	}
	return ex
}

// MustSettle settles r at actual or fails the test.
func MustSettle(t *testing.T, s budget.Store, r budget.Reservation, actual money.Nanos) {
	t.Helper()
	if err := s.Settle(context.Background(), r, actual); err != nil {
		t.Fatalf("Settle(%s, %s): %v", r.RequestID, actual, err)
	}
}

// WantLevel checks a budget's current window.
func WantLevel(t *testing.T, s budget.Store, b budget.Budget, spent, reserved money.Nanos) {
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

// Run runs the conformance suite on the stores newH opens.
func Run(t *testing.T, newH NewHarness) {
	runAdmitConformance(t, newH)
	runSettleConformance(t, newH)
	runRecordsConformance(t, newH)
	runFitConformance(t, newH)
}

// Timeout replaces a store's 500ms default where a test checks behaviour,
// not latency: the machine running tests may be heavily shared.
const Timeout = 10 * time.Second

// Levels returns a budget's spent and reserved amounts in its current
// window.
func Levels(t *testing.T, s budget.Store, b budget.Budget) (spent, reserved money.Nanos) {
	t.Helper()
	st, err := s.Status(context.Background(), []budget.Budget{b})
	if err != nil {
		t.Fatal(err)
	}
	return st[0].Spent, st[0].Reserved
}

// Eventually polls cond for up to 10s, and fails the test if it never
// holds.
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting until %s", what)
}
