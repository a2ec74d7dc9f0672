package boltstore

import (
	"path/filepath"
	"testing"
	_ "time/tzdata" // the rollover cases need a real zone on any machine

	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget/storemetrics"
)

var (
	_ storetest.Store = (*Store)(nil)
)

func boltHarness(t *testing.T) storetest.Harness {
	clock := storetest.NewClock(storetest.T0)
	s, err := Open(filepath.Join(t.TempDir(), "budget.db"), storeopts.Options{Clock: clock.Now, Timeout: storetest.Timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return storetest.Harness{Clock: clock, Store: s, Replica: func(*testing.T) storetest.Store { return boltReplica(s) }}
}

// boltReplica is a second handle on the same file with its own lock owner
// and in-flight set: the embedded store serves one process, so this is as
// close to a second replica as it gets.
func boltReplica(s *Store) *Store {
	c := *s
	c.owner = s.owner + "-replica"
	c.flight = storemetrics.NewInFlight(s.opts.Clock)
	return &c
}

func TestConformanceBolt(t *testing.T) { storetest.Run(t, boltHarness) }

func TestInvariantExactCapUnderConcurrency(t *testing.T) {
	storetest.ExactCapUnderConcurrency(t, boltHarness)
}

func TestInvariantRandomInterleavings(t *testing.T) { storetest.RandomInterleavings(t, boltHarness) }

func TestAdjustIsBounded(t *testing.T) { storetest.AdjustIsBounded(t, boltHarness) }
