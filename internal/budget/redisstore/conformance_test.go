package redisstore

import (
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"
)

var _ storetest.Store = (*Store)(nil)

func redisHarness(t *testing.T) storetest.Harness {
	clock := storetest.NewClock(storetest.T0)
	opts := storeopts.Options{Prefix: redistest.Prefix(t), Clock: clock.Now, Timeout: storetest.Timeout}
	addr := redistest.SharedAddr(t)
	redistest.DropPrefix(t, redistest.Client(t, addr), opts.Prefix)
	mk := func(t *testing.T) storetest.Store {
		s, err := New(redistest.Client(t, addr), opts)
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
		s, err := New(redistest.ClusterClient(t, c), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	return storetest.Harness{Clock: clock, Store: mk(t), Replica: mk}
}

func TestConformanceRedis(t *testing.T)   { storetest.Run(t, redisHarness) }
func TestConformanceCluster(t *testing.T) { storetest.Run(t, clusterHarness) }

// harnesses are a standalone server and a Cluster, for the tests that run
// on both.
var harnesses = []struct {
	name string
	newH storetest.NewHarness
}{
	{"redis", redisHarness},
	{"cluster", clusterHarness},
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

func TestAdjustIsBounded(t *testing.T) { storetest.AdjustIsBounded(t, redisHarness) }
