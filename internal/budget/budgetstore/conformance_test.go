package budgetstore

import (
	"path/filepath"
	"testing"
	_ "time/tzdata" // the rollover cases need a real zone on any machine

	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget/storemetrics"
)

var (
	_ storetest.Store = (*RedisStore)(nil)
	_ storetest.Store = (*BoltStore)(nil)
)

func redisHarness(t *testing.T) storetest.Harness {
	clock := storetest.NewClock(storetest.T0)
	opts := storeopts.Options{Prefix: redistest.Prefix(t), Clock: clock.Now, Timeout: storetest.Timeout}
	addr := redistest.SharedAddr(t)
	redistest.DropPrefix(t, redistest.Client(t, addr), opts.Prefix)
	mk := func(t *testing.T) storetest.Store {
		s, err := NewRedis(redistest.Client(t, addr), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	return storetest.Harness{Clock: clock, Store: mk(t), Replica: mk}
}

func clusterHarness(t *testing.T) storetest.Harness {
	clock := storetest.NewClock(storetest.T0)
	opts := storeopts.Options{Prefix: redistest.Prefix(t), Clock: clock.Now, Timeout: storetest.Timeout}
	c := redistest.SharedCluster(t)
	redistest.DropPrefix(t, redistest.ClusterClient(t, c), opts.Prefix)
	mk := func(t *testing.T) storetest.Store {
		s, err := NewRedis(redistest.ClusterClient(t, c), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	return storetest.Harness{Clock: clock, Store: mk(t), Replica: mk}
}

func boltHarness(t *testing.T) storetest.Harness {
	clock := storetest.NewClock(storetest.T0)
	s, err := OpenBolt(filepath.Join(t.TempDir(), "budget.db"), storeopts.Options{Clock: clock.Now, Timeout: storetest.Timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return storetest.Harness{Clock: clock, Store: s, Replica: func(*testing.T) storetest.Store { return boltReplica(s) }}
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

func TestConformanceRedis(t *testing.T)   { storetest.Run(t, redisHarness) }
func TestConformanceCluster(t *testing.T) { storetest.Run(t, clusterHarness) }
func TestConformanceBolt(t *testing.T)    { storetest.Run(t, boltHarness) }

// harnesses are the stores the invariant tests run on.
var harnesses = []struct {
	name string
	newH storetest.NewHarness
}{
	{"redis", redisHarness},
	{"cluster", clusterHarness},
	{"bolt", boltHarness},
}

func TestInvariantExactCapUnderConcurrency(t *testing.T) {
	for _, h := range harnesses {
		t.Run(h.name, func(t *testing.T) { storetest.ExactCapUnderConcurrency(t, h.newH) })
	}
}

func TestInvariantRandomInterleavings(t *testing.T) {
	for _, h := range harnesses {
		t.Run(h.name, func(t *testing.T) { storetest.RandomInterleavings(t, h.newH) })
	}
}

func TestAdjustIsBounded(t *testing.T) {
	for name, newH := range map[string]storetest.NewHarness{"redis": redisHarness, "bolt": boltHarness} {
		t.Run(name, func(t *testing.T) { storetest.AdjustIsBounded(t, newH) })
	}
}
