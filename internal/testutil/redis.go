// Package testutil starts the real processes tests need: a private
// redis-server on a free loopback port, which tests can stop, kill, pause
// and restart to inject faults.
package testutil

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a private redis-server process.
type Redis struct {
	t    testing.TB
	Port int
	dir  string
	cmd  *exec.Cmd
	args []string
}

// Addr is host:port of the server.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// URL is a redis:// URL for CLADE_REDIS_URL.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// Client returns a go-redis client closed at cleanup.
func (r *Redis) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	r.t.Cleanup(func() { _ = c.Close() })
	return c
}

// StartRedis starts redis-server with no persistence on a free port. When
// CLADE_TEST_REDIS_ADDR is set, tests that need fault injection cannot use
// it; this always starts a private one. A machine without redis-server
// fails the test: CI installs it (.ci/run).
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not on PATH (apt-get install -y redis-server): %v", err)
	}
	r := &Redis{t: t, Port: FreePort(t), dir: t.TempDir()}
	r.args = append([]string{"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--protected-mode", "no", "--logfile", filepath.Join(r.dir, "redis.log")}, extra...)
	r.start(bin)
	t.Cleanup(r.Stop)
	return r
}

func (r *Redis) start(bin string) {
	r.t.Helper()
	r.cmd = exec.Command(bin, r.args...)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	if err := WaitTCP(r.Addr(), 10*time.Second); err != nil {
		r.t.Fatalf("redis-server did not come up: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server does not answer PING")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop terminates the server (idempotent).
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Kill is Stop under its fault-injection name: SIGKILL, no shutdown save.
func (r *Redis) Kill() { r.Stop() }

// Restart starts the server again on the same port, empty (no persistence).
func (r *Redis) Restart() {
	r.t.Helper()
	r.Stop()
	bin, _ := exec.LookPath("redis-server")
	r.start(bin)
}

// Pause stops the process (SIGSTOP) so it accepts connections but answers
// nothing: a slow store. Resume with Continue.
func (r *Redis) Pause() { _ = r.cmd.Process.Signal(syscall.SIGSTOP) }

// Continue resumes a paused server.
func (r *Redis) Continue() { _ = r.cmd.Process.Signal(syscall.SIGCONT) }

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitTCP waits until addr accepts connections.
func WaitTCP(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
