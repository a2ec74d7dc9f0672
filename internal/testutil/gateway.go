package testutil

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/app"
)

// Canary secrets run through tests; no log line, metric, error body or
// upstream header other than the one x-api-key may ever contain them.
const (
	CanaryKey   = "sk-ant-api03-CANARYWORKSPACEKEY0123456789abcdef"
	CanaryToken = "clade_sk_CANARYSERVICETOKEN0123456789abcdef"
	OtherToken  = "clade_sk_OTHERSERVICETOKEN0123456789abcdefgh"
	AdminToken  = "clade_admin_CANARYADMIN0123456789"
	// CanaryAdminKey is an Anthropic Admin API key (reconciliation).
	CanaryAdminKey = "sk-ant-admin01-CANARYADMINAPIKEY0123456789abcdef"
)

// SHA256 is the hex digest the policy stores for a token.
func SHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Buffer is a goroutine-safe bytes.Buffer for captured logs.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// App is the real gateway program running in-process.
type App struct {
	URL, AdminURL string
	Logs, Spend   *Buffer
	Dir           string
	stop          context.CancelFunc
	done          chan error
}

// WritePolicy writes a policy file into dir and returns its path.
func WritePolicy(t testing.TB, dir, yaml string) string {
	t.Helper()
	p := filepath.Join(dir, "clade.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// StartApp runs app.Run with env (CLADE_* settings; the listeners and data
// dir are filled in) and waits until /readyz answers 200.
func StartApp(t testing.TB, env map[string]string) *App {
	t.Helper()
	return startApp(t, env, "/readyz")
}

// StartAppServing is StartApp for a gateway whose budget store may be down:
// it waits until /healthz answers (the listeners serve) instead of /readyz
// (the store is reachable too). Fault tests use it to start a gateway while
// Redis is dead, the way an operator's restart during an outage would.
func StartAppServing(t testing.TB, env map[string]string) *App {
	t.Helper()
	return startApp(t, env, "/healthz")
}

func startApp(t testing.TB, env map[string]string, probe string) *App {
	t.Helper()
	a := &App{Logs: &Buffer{}, Spend: &Buffer{}, done: make(chan error, 1)}
	e := map[string]string{
		"CLADE_LISTEN":               "127.0.0.1:" + strconv.Itoa(FreePort(t)),
		"CLADE_ADMIN_LISTEN":         "127.0.0.1:" + strconv.Itoa(FreePort(t)),
		"CLADE_DATA_DIR":             t.TempDir(),
		"CLADE_LOG_LEVEL":            "debug",
		"CLADE_POLICY_POLL_INTERVAL": "100ms",
		"CLADE_SHUTDOWN_GRACE":       "5s",
		// Tests read the logs while the gateway runs.
		"CLADE_LOG_FLUSH_INTERVAL": "0",
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
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-a.done:
			a.done <- err
			t.Fatalf("gateway exited at start: %v\nlogs:\n%s", err, a.Logs.String())
		default:
		}
		resp, err := client.Get(a.AdminURL + probe)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not answering %s: %v\nlogs:\n%s", probe, err, a.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the gateway down gracefully and returns Run's error.
func (a *App) Stop() error {
	if a.stop == nil {
		return nil
	}
	a.stop()
	a.stop = nil
	err := <-a.done
	a.done <- err
	return err
}
