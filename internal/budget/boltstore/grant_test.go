package boltstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/grant"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"go.etcd.io/bbolt"
)

// A grant's record is kept as long as Redis keeps it (its lease plus the
// settled-marker lifetime after its last step) with one GC entry however
// many steps it takes, and is deleted after that.
func TestBoltGrantRecordIsCollectedWithOneGCEntry(t *testing.T) {
	clock := storetest.NewClock(storetest.T0)
	s, err := Open(filepath.Join(t.TempDir(), "budgets.db"), storeopts.Options{Clock: clock.Now, Timeout: storetest.Timeout})
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
