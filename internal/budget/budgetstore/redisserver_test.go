package budgetstore

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clade-gateway/clade-gateway/internal/testproc"
)

// needRedis returns the path of a binary, failing the test when it is
// missing: CI installs redis, so a missing server is a broken setup, not a
// reason to skip. CLADE_TEST_NO_REDIS=1 is the explicit opt-out.
func needRedis(t testing.TB, bin string) string {
	t.Helper()
	if os.Getenv("CLADE_TEST_NO_REDIS") == "1" {
		t.Skip("CLADE_TEST_NO_REDIS=1: Redis tests disabled")
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		t.Fatalf("%s not on PATH (apt-get install redis-server, or set CLADE_TEST_NO_REDIS=1): %v", bin, err)
	}
	return p
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int { return testproc.Port(t) }

// redisServer is one private redis-server process (testproc.Redis) whose
// failures fail the test.
type redisServer struct {
	*testproc.Redis
	t testing.TB
}

func (r *redisServer) addr() string { return r.Addr() }

// startRedis starts a redis-server with no persistence on a free port and
// kills it when the test ends.
func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	needRedis(t, "redis-server")
	return &redisServer{Redis: testproc.StartRedis(t, extra...), t: t}
}

// startRedisOn is startRedis on a given port.
func startRedisOn(t testing.TB, port int) *redisServer {
	t.Helper()
	needRedis(t, "redis-server")
	r, err := testproc.NewRedis(testproc.RedisConfig{Port: port, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Kill)
	return &redisServer{Redis: r, t: t}
}

// start starts a stopped server again, on the same port and empty.
func (r *redisServer) start() {
	r.t.Helper()
	if err := r.Restart(); err != nil {
		r.t.Fatal(err)
	}
}

// stop kills the server (SIGKILL: the data is gone, as in a crash).
func (r *redisServer) stop() { r.Kill() }

func (r *redisServer) signal(sig syscall.Signal) {
	r.t.Helper()
	p := r.Process()
	if p == nil {
		r.t.Fatalf("signal %v: redis-server on %s is not running", sig, r.addr())
	}
	if err := p.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
}

// newClient returns a client with context deadlines honoured, closed at
// the end of the test.
func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, PoolSize: 64})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// sharedRedisAddr is the standalone server the conformance and invariant
// tests share: CLADE_TEST_REDIS_ADDR if set, else a private server for the
// test binary. Tests isolate themselves with a unique key prefix.
var sharedRedisAddr = func() func(t testing.TB) string {
	var addr string
	return func(t testing.TB) string {
		t.Helper()
		if a := os.Getenv("CLADE_TEST_REDIS_ADDR"); a != "" {
			if os.Getenv("CLADE_TEST_NO_REDIS") == "1" {
				t.Skip("CLADE_TEST_NO_REDIS=1: Redis tests disabled")
			}
			return a
		}
		if addr == "" {
			needRedis(t, "redis-server")
			srv, err := testproc.NewRedis(testproc.RedisConfig{})
			if err != nil {
				t.Fatal(err)
			}
			sharedServers = append(sharedServers, srv)
			addr = srv.Addr()
		}
		return addr
	}
}()

// sharedServers outlive the test that started them: TestMain closes them
// after every test has run.
var sharedServers []*testproc.Redis

var prefixSeq atomic.Int64

// uniquePrefix names a test's keyspace so tests sharing a server never see
// each other's keys (and, on Cluster, spread over different slots).
func uniquePrefix(t testing.TB) string {
	return fmt.Sprintf("t%d-%s", prefixSeq.Add(1), strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()))
}

// redisCluster is a private 3-master Redis Cluster on loopback.
type redisCluster struct {
	*testproc.Cluster
}

func (c *redisCluster) addrs() []string { return c.Addrs() }

var sharedCluster = func() func(t testing.TB) *redisCluster {
	var c *redisCluster
	return func(t testing.TB) *redisCluster {
		t.Helper()
		if c == nil {
			c = startCluster(t)
		}
		return c
	}
}()

// startCluster starts three cluster-enabled servers joined as masters
// with no replicas (see reliability.md §3.4); TestMain stops them.
func startCluster(t testing.TB) *redisCluster {
	t.Helper()
	needRedis(t, "redis-server")
	needRedis(t, "redis-cli")
	c, err := testproc.NewCluster(3)
	if err != nil {
		t.Fatal(err)
	}
	sharedServers = append(sharedServers, c.Nodes...)
	return &redisCluster{Cluster: c}
}

func newClusterClient(t testing.TB, c *redisCluster) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.addrs(), ContextTimeoutEnabled: true, PoolSize: 64})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// dropPrefix deletes every key of a test's keyspace when the test ends, so
// a shared CLADE_TEST_REDIS_ADDR server is left as it was found.
func dropPrefix(t testing.TB, c redis.UniversalClient, prefix string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		drop := func(ctx context.Context, node *redis.Client) error {
			iter := node.Scan(ctx, 0, "{"+prefix+"}*", 1000).Iterator()
			var keys []string
			for iter.Next(ctx) {
				keys = append(keys, iter.Val())
			}
			if err := iter.Err(); err != nil || len(keys) == 0 {
				return err
			}
			return node.Del(ctx, keys...).Err()
		}
		var err error
		switch x := c.(type) {
		case *redis.ClusterClient:
			err = x.ForEachMaster(ctx, drop)
		case *redis.Client:
			err = drop(ctx, x)
		}
		if err != nil {
			t.Errorf("drop test keys: %v", err)
		}
	})
}
