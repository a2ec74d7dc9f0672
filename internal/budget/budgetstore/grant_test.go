package budgetstore

import (
	"context"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/redis/go-redis/v9"
)

// grantHarness is a store on a fake clock, and a way to open replicas
// (Granted stores) on it: Redis, Redis Cluster or the embedded store.
type grantHarness struct {
	clock   *storetest.Clock
	addr    string // a single server's; "" on a cluster or the embedded store
	client  func(t *testing.T) redis.UniversalClient
	opts    storeopts.Options
	plain   ledgerStore                                          // reads levels; places exact holds
	backend func(t *testing.T, o storeopts.Options) grantBackend // the store of a new replica
	steps   *atomic.Int64                                        // grant steps every replica sent
}

// grantBackends runs a grant test on Redis and on the embedded store.
func grantBackends(t *testing.T, run func(t *testing.T, h grantHarness)) {
	t.Run("redis", func(t *testing.T) { run(t, newGrantHarness(t, redistest.SharedAddr(t))) })
	t.Run("bolt", func(t *testing.T) { run(t, boltGrantHarness(t)) })
}

func newGrantHarness(t *testing.T, addr string) grantHarness {
	h := grantHarnessOn(t, func(t *testing.T) redis.UniversalClient { return redistest.Client(t, addr) })
	h.addr = addr
	return h
}

// clusterGrantHarness runs grants on the shared 3-master Redis Cluster:
// every grant.lua call must stay in the prefix's hash slot.
func clusterGrantHarness(t *testing.T) grantHarness {
	c := redistest.SharedCluster(t)
	return grantHarnessOn(t, func(t *testing.T) redis.UniversalClient { return redistest.ClusterClient(t, c) })
}

func grantHarnessOn(t *testing.T, client func(t *testing.T) redis.UniversalClient) grantHarness {
	clock := storetest.NewClock(storetest.T0)
	opts := storeopts.Options{Prefix: redistest.Prefix(t), Clock: clock.Now, Timeout: storetest.Timeout}
	redistest.DropPrefix(t, client(t), opts.Prefix)
	plain, err := NewRedis(client(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plain.Close() })
	h := grantHarness{clock: clock, client: client, opts: opts, plain: plain, steps: new(atomic.Int64)}
	h.backend = func(t *testing.T, o storeopts.Options) grantBackend {
		s, err := NewRedis(client(t), o)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return h
}

// boltGrantHarness runs grants on one embedded store file; each replica is
// another handle on it (see boltReplica) that leaves the file open when
// its grants close.
func boltGrantHarness(t *testing.T) grantHarness {
	clock := storetest.NewClock(storetest.T0)
	opts := storeopts.Options{Clock: clock.Now, Timeout: storetest.Timeout}
	plain, err := OpenBolt(filepath.Join(t.TempDir(), "budgets.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plain.Close() })
	h := grantHarness{clock: clock, opts: opts, plain: plain, steps: new(atomic.Int64)}
	n := 0
	h.backend = func(_ *testing.T, o storeopts.Options) grantBackend {
		n++
		r := boltReplica(plain)
		if o.Logger != nil {
			r.opts.Logger = o.Logger
		}
		r.owner += strconv.Itoa(n)
		return openBolt{r}
	}
	return h
}

// openBolt is a handle on an embedded store whose Close leaves the file
// open, for the harness's other handles.
type openBolt struct{ *BoltStore }

func (openBolt) Close() error { return nil }

// countSteps counts the grant steps sent to a store.
type countSteps struct {
	grantBackend
	n *atomic.Int64
}

func (c countSteps) stepGrant(ctx context.Context, g *grantSpec, st *grantStep) (grantReply, error) {
	c.n.Add(1)
	return c.grantBackend.stepGrant(ctx, g, st)
}

// replica opens a Granted store; the test closes it (or crashes it).
func (h grantHarness) replica(t *testing.T) *Granted {
	g, err := NewGranted(countSteps{h.backend(t, h.opts), h.steps}, GrantOptions{Window: 100 * time.Millisecond, Lease: time.Minute, Flush: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// crash stops a replica's background work without returning anything, as
// a killed process would.
func crash(g *Granted) {
	g.closed.Do(func() { close(g.stop) })
	g.bg.Wait()
}
