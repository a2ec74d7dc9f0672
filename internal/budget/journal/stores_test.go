package journal

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/redisstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// stores opens a fresh store of each kind the journal replays into, on a
// clock the test drives.
var stores = []struct {
	name string
	open func(t *testing.T, clock *storetest.Clock) budget.Store
}{
	{"redis", func(t *testing.T, clock *storetest.Clock) budget.Store {
		opts := storeopts.Options{Prefix: redistest.Prefix(t), Clock: clock.Now, Timeout: storetest.Timeout}
		addr := redistest.SharedAddr(t)
		redistest.DropPrefix(t, redistest.Client(t, addr), opts.Prefix)
		return openRedis(t, addr, opts)
	}},
	{"cluster", func(t *testing.T, clock *storetest.Clock) budget.Store {
		opts := storeopts.Options{Prefix: redistest.Prefix(t), Clock: clock.Now, Timeout: storetest.Timeout}
		c := redistest.SharedCluster(t)
		redistest.DropPrefix(t, redistest.ClusterClient(t, c), opts.Prefix)
		s, err := redisstore.New(redistest.ClusterClient(t, c), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}},
	{"bolt", func(t *testing.T, clock *storetest.Clock) budget.Store { return openBolt(t, clock) }},
}

// openRedis opens a store on the Redis at addr, closed when the test ends.
func openRedis(t *testing.T, addr string, opts storeopts.Options) *redisstore.Store {
	s, err := redisstore.New(redistest.Client(t, addr), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openBolt opens a fresh embedded store on clock, closed when the test
// ends.
func openBolt(t *testing.T, clock *storetest.Clock) *boltstore.Store {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "b.db"), storeopts.Options{Clock: clock.Now, Timeout: storetest.Timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
