package budget

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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

// freePort returns a loopback port that is free, and whose cluster bus
// port (+10000) is free too.
func freePort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if p+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			continue
		}
		_ = bus.Close()
		return p
	}
	t.Fatal("no free port pair")
	return 0
}

// redisServer is one private redis-server process.
type redisServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string
	cmd  *exec.Cmd
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// startRedis starts a redis-server with no persistence on a free port and
// stops it when the test ends.
func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	r := &redisServer{t: t, bin: needRedis(t, "redis-server"), dir: t.TempDir(), port: freePort(t), args: extra}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) start() {
	r.t.Helper()
	args := append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log")}, r.args...)
	r.cmd = exec.Command(r.bin, args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	waitPing(r.t, r.addr())
}

// stop kills the server (SIGKILL: the data is gone, as in a crash).
func (r *redisServer) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGCONT) // in case a test paused it
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

func (r *redisServer) signal(sig syscall.Signal) {
	r.t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
}

func waitPing(t testing.TB, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis at %s did not answer PING: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
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
			srv := &redisServer{t: t, bin: needRedis(t, "redis-server"), port: freePort(t)}
			dir, err := os.MkdirTemp("", "clade-redis-")
			if err != nil {
				t.Fatal(err)
			}
			srv.dir = dir
			srv.start()
			sharedServers = append(sharedServers, srv)
			addr = srv.addr()
		}
		return addr
	}
}()

// sharedServers are stopped by TestMain after every test has run.
var sharedServers []*redisServer

var prefixSeq atomic.Int64

// uniquePrefix names a test's keyspace so tests sharing a server never see
// each other's keys (and, on Cluster, spread over different slots).
func uniquePrefix(t testing.TB) string {
	return fmt.Sprintf("t%d-%s", prefixSeq.Add(1), strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()))
}

// redisCluster is a private 3-master Redis Cluster on loopback.
type redisCluster struct {
	nodes []*redisServer
}

func (c *redisCluster) addrs() []string {
	var a []string
	for _, n := range c.nodes {
		a = append(a, n.addr())
	}
	return a
}

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

// startCluster starts three cluster-enabled servers and joins them as
// masters with no replicas (see reliability.md §3.4); it is stopped by
// TestMain.
func startCluster(t testing.TB) *redisCluster {
	t.Helper()
	bin := needRedis(t, "redis-server")
	cli := needRedis(t, "redis-cli")
	c := &redisCluster{}
	for i := 0; i < 3; i++ {
		dir, err := os.MkdirTemp("", "clade-cluster-")
		if err != nil {
			t.Fatal(err)
		}
		n := &redisServer{t: t, bin: bin, dir: dir, port: freePort(t), args: []string{
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "2000",
		}}
		n.start()
		sharedServers = append(sharedServers, n)
		c.nodes = append(c.nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range c.addrs() {
		for {
			out, _ := exec.Command(cli, "-h", "127.0.0.1", "-p", strings.TrimPrefix(a, "127.0.0.1:"), "cluster", "info").Output()
			if strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s never reached cluster_state:ok:\n%s", a, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
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
