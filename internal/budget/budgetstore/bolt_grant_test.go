package budgetstore

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/grant"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"go.etcd.io/bbolt"
)

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
			j, err := OpenJournal(filepath.Join(dir, "journal.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			s, err := OpenBolt(path, opts)
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

			next, err := OpenBolt(path, opts)
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

// A grant's record is kept as long as Redis keeps it (its lease plus the
// settled-marker lifetime after its last step) with one GC entry however
// many steps it takes, and is deleted after that.
func TestBoltGrantRecordIsCollectedWithOneGCEntry(t *testing.T) {
	clock := storetest.NewClock(storetest.T0)
	s, err := OpenBolt(filepath.Join(t.TempDir(), "budgets.db"), storeopts.Options{Clock: clock.Now, Timeout: storetest.Timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	svc := storetest.Bud(budget.ScopeService, "gc", budget.Total, 1_000_000, true)
	a, err := budget.PrepareHold(storetest.Hold("x", 10, time.Minute, svc), clock.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	spec := &grant.Spec{ID: "grant:gc:1", Budgets: a.Hold.Budgets, Keys: a.Keys, KeysJoin: a.KeysJoin, Ends: a.Ends, Lease: time.Minute}
	ctx := context.Background()
	for n := int64(1); n <= 50; n++ {
		st := &grant.Step{N: n, Held: 100, Exp: clock.Now().Add(time.Minute)}
		if n == 1 {
			st.Held, st.Add = 0, 100
		}
		if _, err := s.StepGrant(ctx, spec, st); err != nil {
			t.Fatal(err)
		}
		clock.Add(time.Second)
	}
	gcEntries := func() (grants, entries int) {
		err := s.db.View(func(tx *bbolt.Tx) error {
			grants = tx.Bucket(bktGrants).Stats().KeyN
			return tx.Bucket(bktGC).ForEach(func(k, _ []byte) error {
				if len(k) > 8 && k[8] == gcGrant {
					entries++
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return grants, entries
	}
	if g, e := gcEntries(); g != 1 || e != 1 {
		t.Fatalf("after 50 steps: %d grant records, %d GC entries; want 1 and 1", g, e)
	}
	if _, err := s.StepGrant(ctx, spec, &grant.Step{N: 51, Held: 100, Release: 100, Exp: clock.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	// The first GC deadline passes while the record is kept: it moves on.
	clock.Add(budget.SettledTTL + 15*time.Second)
	storetest.MustSettle(t, s, storetest.MustReserve(t, s, storetest.Hold("tick1", 1, time.Minute, svc)), 1)
	if g, e := gcEntries(); g != 1 || e != 1 {
		t.Fatalf("at the first deadline: %d grant records, %d GC entries; want 1 and 1", g, e)
	}
	clock.Add(2 * time.Minute)
	storetest.MustSettle(t, s, storetest.MustReserve(t, s, storetest.Hold("tick2", 1, time.Minute, svc)), 1)
	if g, e := gcEntries(); g != 0 || e != 0 {
		t.Fatalf("past the record's keeping time: %d grant records, %d GC entries; want none", g, e)
	}
}
