package testutil

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/app"
)

// StartAppServing is StartApp for a gateway whose budget store may be down:
// it waits until /healthz answers (the listeners serve) instead of /readyz
// (the store is reachable too). Fault tests use it to start a gateway while
// Redis is dead, the way an operator's restart during an outage would.
func StartAppServing(t testing.TB, env map[string]string) *App {
	t.Helper()
	a := &App{Logs: &Buffer{}, Spend: &Buffer{}, done: make(chan error, 1)}
	e := map[string]string{
		"CLADE_LISTEN":               "127.0.0.1:" + strconv.Itoa(FreePort(t)),
		"CLADE_ADMIN_LISTEN":         "127.0.0.1:" + strconv.Itoa(FreePort(t)),
		"CLADE_DATA_DIR":             t.TempDir(),
		"CLADE_LOG_LEVEL":            "debug",
		"CLADE_POLICY_POLL_INTERVAL": "100ms",
		"CLADE_SHUTDOWN_GRACE":       "5s",
	}
	for k, v := range env {
		e[k] = v
	}
	a.Dir = e["CLADE_DATA_DIR"]
	a.URL, a.AdminURL = "http://"+e["CLADE_LISTEN"], "http://"+e["CLADE_ADMIN_LISTEN"]
	ctx, cancel := context.WithCancel(context.Background())
	a.stop = cancel
	go func() {
		a.done <- app.Run(ctx, nil, func(k string) string { return e[k] }, bytes.NewReader(nil), a.Spend, a.Logs)
	}()
	t.Cleanup(func() { _ = a.Stop() })
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-a.done:
			a.done <- err
			t.Fatalf("gateway exited at start: %v\nlogs:\n%s", err, a.Logs.String())
		default:
		}
		resp, err := client.Get(a.AdminURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				client.CloseIdleConnections()
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not serving: %v\nlogs:\n%s", err, a.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
