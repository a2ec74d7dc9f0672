package testproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RedisConfig says how to run a redis-server.
type RedisConfig struct {
	// Port to listen on; 0 picks a free loopback port whose cluster bus
	// port is free too.
	Port int
	// Dir holds the server's log, and its AOF or nodes.conf when Args ask
	// for them. "" makes a temporary directory that Close removes.
	Dir string
	// Args are extra redis-server arguments. They come after the defaults
	// (loopback only, no persistence), so they override them.
	Args []string
}

// Redis is a private redis-server on loopback.
type Redis struct {
	Port int
	Dir  string

	bin    string
	args   []string
	ownDir bool

	mu   sync.Mutex
	proc *Process // nil once killed
}

// StartRedis starts a redis-server for a test: loopback, a free port, no
// persistence unless args say otherwise, its directory under t.TempDir().
// It is killed at the test's cleanup. A machine without redis-server fails
// the test: the suite's dependencies are installed by scripts/deps.sh.
func StartRedis(t testing.TB, args ...string) *Redis {
	t.Helper()
	r, err := NewRedis(RedisConfig{Dir: t.TempDir(), Args: args})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Kill)
	return r
}

// NewRedis starts a redis-server as c says and waits until it answers.
// The caller stops it (Kill or Close).
func NewRedis(c RedisConfig) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not on PATH (scripts/deps.sh installs it): %w", err)
	}
	r := &Redis{Port: c.Port, Dir: c.Dir, bin: bin}
	if r.Port == 0 {
		if r.Port, err = freePortPair(); err != nil {
			return nil, err
		}
	}
	if r.Dir == "" {
		if r.Dir, err = os.MkdirTemp("", "testproc-redis-"); err != nil {
			return nil, err
		}
		r.ownDir = true
	}
	r.args = append([]string{"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--protected-mode", "no",
		"--save", "", "--appendonly", "no", "--dir", r.Dir, "--logfile", r.LogFile()}, c.Args...)
	if err := r.start(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Addr is host:port of the server.
func (r *Redis) Addr() string { return loopback(r.Port) }

// URL is a redis:// URL of database 0, as CLADE_REDIS_URL takes it.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// LogFile is the server's log.
func (r *Redis) LogFile() string { return filepath.Join(r.Dir, "redis.log") }

// Process is the running server process; nil once killed.
func (r *Redis) Process() *Process {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc
}

// Pid is the running server's process id; 0 once killed.
func (r *Redis) Pid() int {
	if p := r.Process(); p != nil {
		return p.Pid()
	}
	return 0
}

func (r *Redis) start() error {
	p, err := Start(exec.Command(r.bin, r.args...))
	if err != nil {
		return err
	}
	if err := waitReady(r.Addr(), p, 10*time.Second); err != nil {
		p.Kill()
		return fmt.Errorf("redis-server on %s: %w\n%s", r.Addr(), err, tail(r.LogFile()))
	}
	r.mu.Lock()
	r.proc = p
	r.mu.Unlock()
	return nil
}

// Kill sends SIGKILL, as in a crash: no shutdown save, so without
// persistence (the default) the data is gone. Idempotent.
func (r *Redis) Kill() {
	r.mu.Lock()
	p := r.proc
	r.proc = nil
	r.mu.Unlock()
	if p != nil {
		p.Kill()
	}
}

// Restart kills the server if it runs and starts it again on the same
// port, directory and arguments: empty without persistence, with every
// acknowledged write when Args asked for an fsynced AOF.
func (r *Redis) Restart() error {
	r.Kill()
	return r.start()
}

// Pause stops the server (SIGSTOP): connections are accepted but nothing
// is answered, a stalled store. Continue resumes it.
func (r *Redis) Pause() error {
	if p := r.Process(); p != nil {
		return p.Pause()
	}
	return fmt.Errorf("redis-server on %s is not running", r.Addr())
}

// Continue resumes a paused server.
func (r *Redis) Continue() error {
	if p := r.Process(); p != nil {
		return p.Continue()
	}
	return fmt.Errorf("redis-server on %s is not running", r.Addr())
}

// Close kills the server and removes the directory Start made for it.
func (r *Redis) Close() {
	r.Kill()
	if r.ownDir {
		_ = os.RemoveAll(r.Dir)
	}
}

// waitReady waits until the server at addr answers PING, and is p: a server
// that found its port taken exits, and the one that holds the port must
// not pass for it.
func waitReady(addr string, p *Process, within time.Duration) error {
	deadline := time.Now().Add(within)
	want := "process_id:" + strconv.Itoa(p.Pid()) + "\r\n"
	for {
		info, err := Command(addr, 500*time.Millisecond, "INFO", "server")
		if err == nil && strings.Contains(info, want) {
			// PING fails with LOADING until an AOF is read back.
			if _, err = Command(addr, 500*time.Millisecond, "PING"); err == nil {
				return nil
			}
		}
		if p.Exited() {
			return fmt.Errorf("exited at start: %w", p.Err())
		}
		if time.Now().After(deadline) {
			if err == nil && !strings.Contains(info, want) {
				err = errors.New("another process answers on the port")
			}
			return fmt.Errorf("not ready within %v: %w", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tail is the end of a log file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
