// Package redistest gives the budget stores' tests a real Redis: a private
// redis-server for a test that stops or empties it, one standalone server
// and one Redis Cluster shared by every test of a test binary, clients
// that honour context deadlines, and a keyspace per test that is dropped
// when the test ends. The processes are testproc's.
//
// A machine without redis-server fails these tests: CI installs it, so a
// missing server is a broken setup, not a reason to skip.
// CLADE_TEST_NO_REDIS=1 is the explicit opt-out; CLADE_TEST_REDIS_ADDR
// names a server to share instead of starting one.
package redistest
