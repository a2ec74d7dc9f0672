package grant_test

import (
	"context"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/grant"
	"github.com/clade-gateway/clade-gateway/internal/budget/redisstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storemetrics"
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
	plain   ledgerStore                                           // reads levels; places exact holds
	backend func(t *testing.T, o storeopts.Options) grant.Backend // the store of a new replica
	steps   *atomic.Int64                                         // grant steps every replica sent
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
	plain, err := redisstore.New(client(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plain.Close() })
	h := grantHarness{clock: clock, client: client, opts: opts, plain: plain, steps: new(atomic.Int64)}
	h.backend = func(t *testing.T, o storeopts.Options) grant.Backend {
		s, err := redisstore.New(client(t), o)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return h
}

// boltGrantHarness runs grants on one embedded store file; each replica is
// another handle on it (see boltReplica).
func boltGrantHarness(t *testing.T) grantHarness {
	clock := storetest.NewClock(storetest.T0)
	opts := storeopts.Options{Clock: clock.Now, Timeout: storetest.Timeout}
	plain, err := boltstore.Open(filepath.Join(t.TempDir(), "budgets.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plain.Close() })
	h := grantHarness{clock: clock, opts: opts, plain: plain, steps: new(atomic.Int64)}
	n := 0
	h.backend = func(_ *testing.T, o storeopts.Options) grant.Backend {
		n++
		env := plain.GrantEnv()
		env.Owner += "-replica" + strconv.Itoa(n)
		env.Flight = storemetrics.NewInFlight(env.Options.Clock)
		if o.Logger != nil {
			env.Options.Logger = o.Logger
		}
		return boltReplica{plain, env}
	}
	return h
}

// boltReplica is another handle on an embedded store file, as close to a
// second replica as one process gets: the grants on it are named after an
// owner token of its own and tracked in an in-flight set of their own, and
// its Close leaves the file open for the harness's other handles.
type boltReplica struct {
	grant.Backend
	env grant.Env
}

func (r boltReplica) GrantEnv() grant.Env { return r.env }

func (boltReplica) Close() error { return nil }

// countSteps counts the grant steps sent to a store.
type countSteps struct {
	grant.Backend
	n *atomic.Int64
}

func (c countSteps) StepGrant(ctx context.Context, g *grant.Spec, st *grant.Step) (grant.Reply, error) {
	c.n.Add(1)
	return c.Backend.StepGrant(ctx, g, st)
}

// replica opens a Granted store; the test closes it (or crashes it).
func (h grantHarness) replica(t *testing.T) *grant.Granted {
	g, err := grant.New(countSteps{h.backend(t, h.opts), h.steps}, grant.Options{Window: 100 * time.Millisecond, Lease: time.Minute, Flush: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// ledgerStore is a store whose spend ledger can be read.
type ledgerStore interface {
	budget.Store
	Ledger(ctx context.Context, from, to time.Time) ([]budget.LedgerLine, error)
}
