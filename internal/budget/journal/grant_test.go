package journal

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/grant"
	"github.com/clade-gateway/clade-gateway/internal/budget/redisstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"go.etcd.io/bbolt"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// A replica shut down while Redis is unreachable journals what its grant
// owes; replaying the journal, from another process, charges the
// settlements made during the outage and returns the rest, exactly, even
// when the grant's lease ended meanwhile, and replaying it twice changes
// nothing.
func TestGrantClosedWhileRedisIsDownIsJournaled(t *testing.T) {
	for _, leaseEnded := range []bool{false, true} {
		t.Run("lease ended "+strconv.FormatBool(leaseEnded), func(t *testing.T) {
			srv := redistest.Start(t)
			clock := storetest.NewClock(storetest.T0)
			opts := storeopts.Options{Prefix: redistest.Prefix(t), Clock: clock.Now, Timeout: storetest.Timeout}
			plain := openRedis(t, srv.Addr(), opts) // reads the levels
			opts.Timeout = 300 * time.Millisecond   // the replica's; the checks use storetest.Timeout
			svc := storetest.Bud(budget.ScopeService, "closing", budget.Daily, 1_000_000, true)
			j, err := Open(filepath.Join(t.TempDir(), "journal.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			s, err := redisstore.New(redistest.Client(t, srv.Addr()), opts)
			if err != nil {
				t.Fatal(err)
			}
			g, err := grant.New(s, grant.Options{Window: 100 * time.Millisecond, Lease: time.Minute, Flush: time.Millisecond, Journal: j})
			if err != nil {
				t.Fatal(err)
			}
			storetest.MustSettle(t, g, storetest.MustReserve(t, g, storetest.Hold("before", 100, time.Minute, svc)), 60)
			storetest.Eventually(t, "the first settlement is charged", func() bool { s, _ := storetest.Levels(t, plain, svc); return s == 60 })

			srv.Signal(syscall.SIGSTOP)
			defer srv.Signal(syscall.SIGCONT)
			during := storetest.MustReserve(t, g, storetest.Hold("during", 100, time.Minute, svc))
			if !during.InMemory() {
				t.Fatal("a request during the pause did not draw on the grant")
			}
			storetest.MustSettle(t, g, during, 70)
			_ = g.Close() // closing its Redis client may report the pause
			if j.Len() != 1 {
				t.Fatalf("journal holds %d entries after closing with Redis paused, want the grant", j.Len())
			}
			c := journaledGrant(t, j)
			if c.DoneActual+unsentActual(c) != 70 {
				t.Errorf("journaled grant owes %+v, want the 70 settled during the pause", c)
			}
			// Redis now runs what was queued: the step whose reply was lost.
			srv.Signal(syscall.SIGCONT)
			if leaseEnded {
				clock.Add(time.Minute + time.Second)
			}
			spent, held := storetest.Levels(t, plain, svc)
			if spent+held < 130 || spent == 130 && held == 0 {
				t.Fatalf("before the replay: spent %s reserved %s; the grant should still cover the outage", spent, held)
			}

			next, err := redisstore.New(redistest.Client(t, srv.Addr()), opts) // the next process
			if err != nil {
				t.Fatal(err)
			}
			defer next.Close()
			if n, err := j.Replay(context.Background(), next); n != 1 || err != nil || j.Len() != 0 {
				t.Fatalf("replay: %d applied, %v, %d left", n, err, j.Len())
			}
			storetest.WantLevel(t, plain, svc, 130, 0)
			if err := next.CloseGrant(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			storetest.WantLevel(t, plain, svc, 130, 0)
		})
	}
}

// faultySteps makes a store's grant steps fail: lostReply applies the step
// and then reports a failure (the reply was lost), unreachable fails
// without applying it.
type faultySteps struct {
	grant.Backend
	mode *atomic.Int32
}

const (
	stepsWork int32 = iota
	stepsLostReply
	stepsUnreachable
)

func (f faultySteps) StepGrant(ctx context.Context, g *grant.Spec, st *grant.Step) (grant.Reply, error) {
	switch f.mode.Load() {
	case stepsLostReply:
		if _, err := f.Backend.StepGrant(ctx, g, st); err != nil {
			return grant.Reply{}, err
		}
		return grant.Reply{}, fmt.Errorf("%w: reply lost", budget.ErrUnavailable)
	case stepsUnreachable:
		return grant.Reply{}, fmt.Errorf("%w: store unreachable", budget.ErrUnavailable)
	}
	return f.Backend.StepGrant(ctx, g, st)
}

// A process whose grant steps fail at shutdown journals what the grant
// owes; the next process on the same files charges the grant at open and
// the journal's replay corrects that charge to the actual costs, exactly,
// whether the step whose outcome was unknown had been applied or not, and
// a second replay changes nothing.
func TestBoltGrantJournaledAtCloseIsReplayedByTheNextProcess(t *testing.T) {
	for _, mode := range []int32{stepsLostReply, stepsUnreachable} {
		t.Run(map[int32]string{stepsLostReply: "reply lost", stepsUnreachable: "unreachable"}[mode], func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "budgets.db")
			clock := storetest.NewClock(storetest.T0)
			opts := storeopts.Options{Clock: clock.Now, Timeout: storetest.Timeout}
			svc := storetest.Bud(budget.ScopeService, "closing", budget.Daily, 1_000_000, true)
			j, err := Open(filepath.Join(dir, "journal.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			s, err := boltstore.Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			var faults atomic.Int32
			g, err := grant.New(faultySteps{s, &faults},
				grant.Options{Window: 100 * time.Millisecond, Lease: time.Minute, Flush: time.Millisecond, Journal: j})
			if err != nil {
				t.Fatal(err)
			}
			storetest.MustSettle(t, g, storetest.MustReserve(t, g, storetest.Hold("before", 100, time.Minute, svc)), 60)
			storetest.Eventually(t, "the first settlement is charged", func() bool { s, _ := storetest.Levels(t, s, svc); return s == 60 })

			faults.Store(mode)
			during := storetest.MustReserve(t, g, storetest.Hold("during", 100, time.Minute, svc))
			if !during.InMemory() {
				t.Fatal("a request while steps fail did not draw on the grant")
			}
			storetest.MustSettle(t, g, during, 70)
			_ = g.Close() // closes s
			if j.Len() != 1 {
				t.Fatalf("journal holds %d entries after closing with failing steps, want the grant", j.Len())
			}
			c := journaledGrant(t, j)
			if c.DoneActual+unsentActual(c) != 70 {
				t.Errorf("journaled grant owes %+v, want the 70 settled while steps failed", c)
			}

			next, err := boltstore.Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer next.Close()
			if spent, held := storetest.Levels(t, next, svc); held != 0 || spent < 130 {
				t.Fatalf("at open: spent %s reserved %s; the gone process's grant should be charged in full", spent, held)
			}
			if n, err := j.Replay(context.Background(), next); n != 1 || err != nil || j.Len() != 0 {
				t.Fatalf("replay: %d applied, %v, %d left", n, err, j.Len())
			}
			storetest.WantLevel(t, next, svc, 130, 0)
			if err := next.CloseGrant(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			storetest.WantLevel(t, next, svc, 130, 0)
		})
	}
}

func journaledGrant(t *testing.T, j *Journal) grant.Closing {
	t.Helper()
	var c *grant.Closing
	err := j.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bktJournal).ForEach(func(_, v []byte) error {
			var e entry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			c = e.Grant
			return nil
		})
	})
	if err != nil || c == nil {
		t.Fatalf("no journaled grant: %v", err)
	}
	return *c
}

func unsentActual(c grant.Closing) money.Nanos {
	if c.Unsent == nil {
		return 0
	}
	return c.Unsent.Actual
}
