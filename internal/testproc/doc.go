// Package testproc runs the real processes that tests and the load bench
// need beside the code under test: a private redis-server on a free
// loopback port, a Redis Cluster, and any child process, each of which can
// be killed, paused, resumed and restarted to inject faults. It also finds
// free loopback ports and relays TCP with a dropped reply.
//
// It is a leaf: it imports only the standard library, so any package's
// tests can use it, including those of packages the application is built
// from. Helpers that need the application (starting the gateway itself)
// live in internal/testutil, built on this package.
//
// Every child is started with SIGKILL as its parent-death signal, so a test
// binary that dies never leaves a server running. Functions taking a
// testing.TB fail the test on error and stop what they started at the
// test's cleanup; the others return errors and leave the lifetime to the
// caller (a test binary's shared server, the bench).
package testproc
