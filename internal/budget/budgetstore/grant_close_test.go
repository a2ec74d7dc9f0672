package budgetstore

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/grant"
	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
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
			h := newRedisGrants(t, srv.Addr())
			h.opts.Timeout = 300 * time.Millisecond // the replica's; the checks use storetest.Timeout
			svc := storetest.Bud(budget.ScopeService, "closing", budget.Daily, 1_000_000, true)
			j, err := OpenJournal(filepath.Join(t.TempDir(), "journal.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			s, err := NewRedis(redistest.Client(t, h.addr), h.opts)
			if err != nil {
				t.Fatal(err)
			}
			g, err := grant.New(s, grant.Options{Window: 100 * time.Millisecond, Lease: time.Minute, Flush: time.Millisecond, Journal: j})
			if err != nil {
				t.Fatal(err)
			}
			storetest.MustSettle(t, g, storetest.MustReserve(t, g, storetest.Hold("before", 100, time.Minute, svc)), 60)
			storetest.Eventually(t, "the first settlement is charged", func() bool { s, _ := storetest.Levels(t, h.plain, svc); return s == 60 })

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
				h.clock.Add(time.Minute + time.Second)
			}
			spent, held := storetest.Levels(t, h.plain, svc)
			if spent+held < 130 || spent == 130 && held == 0 {
				t.Fatalf("before the replay: spent %s reserved %s; the grant should still cover the outage", spent, held)
			}

			next, err := NewRedis(redistest.Client(t, h.addr), h.opts) // the next process
			if err != nil {
				t.Fatal(err)
			}
			defer next.Close()
			if n, err := j.Replay(context.Background(), next); n != 1 || err != nil || j.Len() != 0 {
				t.Fatalf("replay: %d applied, %v, %d left", n, err, j.Len())
			}
			storetest.WantLevel(t, h.plain, svc, 130, 0)
			if err := next.CloseGrant(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			storetest.WantLevel(t, h.plain, svc, 130, 0)
		})
	}
}

func journaledGrant(t *testing.T, j *Journal) grant.Closing {
	t.Helper()
	var c *grant.Closing
	err := j.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bktJournal).ForEach(func(_, v []byte) error {
			var e journalEntry
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
