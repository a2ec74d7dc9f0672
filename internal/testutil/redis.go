// Package testutil runs the gateway itself for tests: in-process (StartApp)
// or as the built binary (StartProcess), with the canary secrets every
// leak check looks for. Processes that do not need the application (Redis,
// Redis Cluster, free ports, a faulty TCP relay) are in internal/testproc;
// this package adds to them only what needs a Redis client.
package testutil

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/clade-gateway/clade-gateway/internal/testproc"
)

// Redis is a private redis-server (testproc.Redis) for a test, with a
// go-redis client at hand and the test's failure on a restart that fails.
type Redis struct {
	*testproc.Redis
	t testing.TB
}

// StartRedis starts a private redis-server on a free loopback port, killed
// at cleanup (testproc.StartRedis). A machine without redis-server fails
// the test: CI installs it (.ci/run).
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	return &Redis{Redis: testproc.StartRedis(t, extra...), t: t}
}

// Client returns a go-redis client closed at cleanup.
func (r *Redis) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	r.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop is Kill: SIGKILL, no shutdown save. Idempotent.
func (r *Redis) Stop() { r.Kill() }

// Restart starts the server again on the same port, empty unless its
// arguments asked for persistence; a failure fails the test.
func (r *Redis) Restart() {
	r.t.Helper()
	if err := r.Redis.Restart(); err != nil {
		r.t.Fatal(err)
	}
}

// Pause stops the server (SIGSTOP): connections are accepted, nothing is
// answered. A failure is reported to the test.
func (r *Redis) Pause() {
	if err := r.Redis.Pause(); err != nil {
		r.t.Error(err)
	}
}

// Continue resumes a paused server; a failure is reported to the test.
func (r *Redis) Continue() {
	if err := r.Redis.Continue(); err != nil {
		r.t.Error(err)
	}
}

// FreePort returns a loopback TCP port that was free a moment ago
// (testproc.Port).
func FreePort(t testing.TB) int {
	t.Helper()
	return testproc.Port(t)
}
