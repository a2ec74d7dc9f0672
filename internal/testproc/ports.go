package testproc

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"
)

// FreePort returns a loopback TCP port that was free a moment ago. Another
// process may take it before the caller binds it; on a test machine that
// is rare enough to live with, and a start that fails says so.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Port is FreePort for a test: it fails the test instead of returning an
// error.
func Port(t testing.TB) int {
	t.Helper()
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// clusterBusOffset is where Redis Cluster puts a node's bus port.
const clusterBusOffset = 10000

// freePortPair returns a free loopback port whose cluster bus port
// (port+10000) is free too, so any redis-server may run cluster-enabled.
func freePortPair() (int, error) {
	for range 100 {
		p, err := FreePort()
		if err != nil {
			return 0, err
		}
		if p+clusterBusOffset > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", loopback(p+clusterBusOffset))
		if err != nil {
			continue
		}
		_ = bus.Close()
		return p, nil
	}
	return 0, errors.New("no free loopback port whose cluster bus port is free too")
}

func loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

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
