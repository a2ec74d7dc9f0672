package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/clade-gateway/clade-gateway/internal/testproc"
)

// Need returns the path of a binary, failing the test when it is missing
// and skipping it when CLADE_TEST_NO_REDIS=1.
func Need(t testing.TB, bin string) string {
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

// Server is one private redis-server process (testproc.Redis) whose
// failures fail the test.
type Server struct {
	*testproc.Redis
	t testing.TB
}

// Start starts a redis-server with no persistence on a free port and
// kills it when the test ends.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	Need(t, "redis-server")
	return &Server{Redis: testproc.StartRedis(t, extra...), t: t}
}

// StartOn is Start on a given port.
func StartOn(t testing.TB, port int) *Server {
	t.Helper()
	Need(t, "redis-server")
	r, err := testproc.NewRedis(testproc.RedisConfig{Port: port, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Kill)
	return &Server{Redis: r, t: t}
}

// Restart starts a stopped server again, on the same port and empty.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.Redis.Restart(); err != nil {
		s.t.Fatal(err)
	}
}

// Stop kills the server (SIGKILL: the data is gone, as in a crash).
func (s *Server) Stop() { s.Kill() }

// Signal sends sig to the server (SIGSTOP pauses it, SIGCONT resumes it).
func (s *Server) Signal(sig syscall.Signal) {
	s.t.Helper()
	p := s.Process()
	if p == nil {
		s.t.Fatalf("signal %v: redis-server on %s is not running", sig, s.Addr())
	}
	if err := p.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
}

// Client returns a client with context deadlines honoured, closed at the
// end of the test.
func Client(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, PoolSize: 64})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ClusterClient is Client on a Redis Cluster.
func ClusterClient(t testing.TB, c *testproc.Cluster) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true, PoolSize: 64})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// shared holds the servers every test of a test binary shares: they
// outlive the test that started them, and Main closes them after every
// test has run.
var shared struct {
	mu      sync.Mutex
	addr    string
	cluster *testproc.Cluster
	servers []*testproc.Redis
}

// SharedAddr returns the standalone server tests share:
// CLADE_TEST_REDIS_ADDR if set, else a private server for the test binary.
// Tests isolate themselves with a Prefix.
func SharedAddr(t testing.TB) string {
	t.Helper()
	if a := os.Getenv("CLADE_TEST_REDIS_ADDR"); a != "" {
		if os.Getenv("CLADE_TEST_NO_REDIS") == "1" {
			t.Skip("CLADE_TEST_NO_REDIS=1: Redis tests disabled")
		}
		return a
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.addr == "" {
		Need(t, "redis-server")
		srv, err := testproc.NewRedis(testproc.RedisConfig{})
		if err != nil {
			t.Fatal(err)
		}
		shared.servers = append(shared.servers, srv)
		shared.addr = srv.Addr()
	}
	return shared.addr
}

// SharedCluster returns a 3-master Redis Cluster with no replicas (see
// reliability.md §3.4) that tests of the binary share.
func SharedCluster(t testing.TB) *testproc.Cluster {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster == nil {
		Need(t, "redis-server")
		Need(t, "redis-cli")
		c, err := testproc.NewCluster(3)
		if err != nil {
			t.Fatal(err)
		}
		shared.servers = append(shared.servers, c.Nodes...)
		shared.cluster = c
	}
	return shared.cluster
}

var prefixSeq atomic.Int64

// Prefix names a test's keyspace so tests sharing a server never see each
// other's keys (and, on Cluster, spread over different slots).
func Prefix(t testing.TB) string {
	return fmt.Sprintf("t%d-%s", prefixSeq.Add(1), strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()))
}

// DropPrefix deletes every key of a test's keyspace when the test ends, so
// a shared CLADE_TEST_REDIS_ADDR server is left as it was found.
func DropPrefix(t testing.TB, c redis.UniversalClient, prefix string) {
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

// quietRedisLog drops go-redis's own log lines: the outage tests make it
// print a dial failure per attempt, which buries real test output.
type quietRedisLog struct{}

func (quietRedisLog) Printf(context.Context, string, ...any) {}

// Main runs a test binary's tests (call it from TestMain and exit with its
// code): go-redis quiet, the shared servers closed at the end, and a
// goroutine left running after passing tests is a failure.
func Main(m *testing.M) int {
	redis.SetLogger(quietRedisLog{})
	code := m.Run()
	shared.mu.Lock()
	for _, s := range shared.servers {
		s.Close()
	}
	shared.mu.Unlock()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}
