package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// The sample policy's (deploy/clade.yaml) public demo tokens.
const (
	demoPolicy      = "deploy/clade.yaml"
	demoTokenFirst  = "clade_sk_demo_recommendation_change_me"
	demoTokenLoop   = "clade_sk_demo_indexer_change_me"
	demoAdminToken  = "clade_admin_demo_change_me"
	demoDefaultAPI  = "127.0.0.1:8080"
	demoDefaultAdm  = "127.0.0.1:9090"
	demoAnswerText  = "[clade-gateway demo] This answer comes from the gateway's built-in fake Anthropic API, not from Claude."
	demoForgetEvery = 1000
)

// demo serves the real gateway against a fake of the Anthropic API that
// runs in the same process on loopback: the embedded store in a temporary
// folder, the sample policy, and a workspace key made up for this run. No
// Anthropic key is read and nothing leaves the machine. It is never the
// default: only the demo command starts the fake.
func demo(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	path := getenv("CLADE_CONFIG")
	if path == "" {
		path = demoPolicy
	}
	pol, err := policy.Load(path, policy.LoadOptions{Getenv: getenv, Now: time.Now})
	if err != nil {
		return fmt.Errorf("demo: policy %s (run the demo from the repository root, or set CLADE_CONFIG):\n%w", path, err)
	}
	var kb [16]byte
	_, _ = rand.Read(kb[:])
	key := "demo-workspace-key-" + hex.EncodeToString(kb[:])

	fake := fakeupstream.New(key)
	fake.Behave = demoBehavior
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: fake upstream: %w", err)
	}
	up := &http.Server{Handler: &demoUpstream{fake: fake}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = up.Serve(upLn) }()
	defer func() { _ = up.Close() }()

	dir, err := os.MkdirTemp("", "clade-demo-")
	if err != nil {
		return fmt.Errorf("demo: data folder: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }() // a temporary folder; nothing in it is kept

	listen, adminListen := orDefault(getenv("CLADE_LISTEN"), demoDefaultAPI), orDefault(getenv("CLADE_ADMIN_LISTEN"), demoDefaultAdm)
	for name, addr := range map[string]string{"CLADE_LISTEN": listen, "CLADE_ADMIN_LISTEN": adminListen} {
		if !isLoopback(addr) {
			return fmt.Errorf("demo: %s=%q: the demo listens on loopback only (its tokens are public), such as %s", name, addr, demoDefaultAPI)
		}
	}
	over := map[string]string{
		"CLADE_CONFIG":         path,
		"CLADE_UPSTREAM_URL":   "http://" + upLn.Addr().String(),
		"CLADE_UPSTREAM_PROXY": "",
		"CLADE_REDIS_URL":      "", // the embedded store
		"CLADE_GRANT_WINDOW":   "",
		"CLADE_DATA_DIR":       dir,
		"CLADE_LISTEN":         listen,
		"CLADE_ADMIN_LISTEN":   adminListen,
		"CLADE_PUBLIC_URL":     "http://" + listen,
		"CLADE_LOG_FORMAT":     orDefault(getenv("CLADE_LOG_FORMAT"), "console"),
		"CLADE_SPEND_LOG":      "stdout",
		// A person watches: each line as it happens.
		"CLADE_LOG_FLUSH_INTERVAL": "0",
	}
	// Every workspace key of the policy is the made-up one: a real key in
	// the shell is never read, let alone sent.
	for _, ws := range pol.Workspaces {
		for _, k := range ws.Keys {
			if k.Env != "" {
				over[k.Env] = key
			}
		}
	}
	env := func(k string) string {
		if v, ok := over[k]; ok {
			return v
		}
		return getenv(k)
	}

	out := &lockedWriter{w: stdout}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, env, &spendSummary{w: out}, stderr) }()
	if err := waitReady(ctx, "http://"+adminListen+"/readyz", done); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	_, _ = fmt.Fprint(out, demoBanner(pol, path, listen, adminListen, upLn.Addr().String()))
	return <-done
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// waitReady polls the admin readiness probe until the gateway answers, or
// serve returns (its error is handed back through done).
func waitReady(ctx context.Context, url string, done chan error) error {
	c := &http.Client{Timeout: time.Second}
	defer c.CloseIdleConnections()
	for {
		select {
		case err := <-done:
			if err == nil {
				err = errors.New("the gateway stopped before it was ready")
			}
			done <- err
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
}

type usageKey struct{}

// demoUpstream sizes each fake answer from its request, so spend grows as
// it would: input tokens a quarter of the body's bytes, output up to
// max_tokens (a model that writes until it is stopped). Both stay within
// the gateway's admission estimate, as real usage does.
type demoUpstream struct {
	fake *fakeupstream.Server
	n    atomic.Int64
}

func (d *demoUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d.n.Add(1)%demoForgetEvery == 0 {
		d.fake.ForgetRequests() // a demo can run for hours under Claude Code
	}
	if r.Method == http.MethodPost && r.URL.Path == "/v1/messages" {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil {
			return
		}
		var req struct {
			MaxTokens int64 `json:"max_tokens"`
		}
		_ = json.Unmarshal(body, &req)
		u := fakeupstream.Usage{InputTokens: max(int64(len(body))/4, 1), OutputTokens: max(req.MaxTokens, 1)}
		r = r.WithContext(context.WithValue(r.Context(), usageKey{}, u))
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	d.fake.ServeHTTP(w, r)
}

func demoBehavior(r *http.Request, _ string, _ bool) fakeupstream.Behavior {
	u, _ := r.Context().Value(usageKey{}).(fakeupstream.Usage)
	return fakeupstream.Behavior{Usage: u, Text: []string{demoAnswerText}}
}

// demoBanner says what is running and what to try next, with the tokens of
// the loaded policy when it is the sample one.
func demoBanner(pol *policy.Policy, path, listen, admin, upstream string) string {
	first, loop, adm := "<a service token>", "<another service token>", "<an admin token>"
	var loopSvc *policy.Service
	if _, ok := pol.ServiceByToken(demoTokenFirst); ok {
		first = demoTokenFirst
	}
	if s, ok := pol.ServiceByToken(demoTokenLoop); ok {
		loop, loopSvc = demoTokenLoop, s
	}
	if pol.IsAdminToken(demoAdminToken) {
		adm = demoAdminToken
	}
	target := "a service into its budget"
	if loopSvc != nil {
		if b, ok := tightest(loopSvc.Budgets); ok {
			target = fmt.Sprintf("the %s service into its %s budget of $%s", loopSvc.Name, b.Period, b.Limit)
		}
	}
	api := "http://" + listen
	msg := func(token, model string, maxTokens int) string {
		return fmt.Sprintf(`%s/v1/messages -H "x-api-key: %s" -H "anthropic-version: 2023-06-01" -H "content-type: application/json" -d '{"model":"%s","max_tokens":%d,"messages":[{"role":"user","content":"Hello"}]}'`,
			api, token, model, maxTokens)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `
==================================================================
 clade-gateway DEMO: answers come from a built-in FAKE Anthropic API
 (%s). No Anthropic key is used; nothing leaves this machine.
==================================================================
 API %s   admin http://%s
 policy %s, embedded store in a temporary folder (deleted on exit)

 Try, in another terminal:

 1. A request, metered and priced (its cost is printed here, below):
    curl -s -i %s

 2. The budgets, with what that request spent:
    curl -s http://%s/admin/budgets -H "Authorization: Bearer %s"

 3. Drive %s, then see the 402:
    for i in $(seq 40); do curl -s -o /dev/null -w "%%{http_code} " %s; done; echo
    curl -s -i %s

 Claude Code or an SDK against the demo:
    ANTHROPIC_BASE_URL=%s ANTHROPIC_AUTH_TOKEN=%s claude

 Ctrl-C stops the demo.
==================================================================
`, upstream, api, admin, path, msg(first, "claude-haiku-4-5", 64), admin, adm, target, msg(loop, "claude-sonnet-4-6", 4096), msg(loop, "claude-sonnet-4-6", 4096), api, first)
	return b.String()
}

// tightest is the enforced budget with the smallest limit.
func tightest(bs []budget.Budget) (budget.Budget, bool) {
	var best budget.Budget
	found := false
	for _, b := range bs {
		if b.Enforce && (!found || b.Limit < best.Limit) {
			best, found = b, true
		}
	}
	return best, found
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// spendSummary turns each spend record (one JSON line) into a line a
// person reads at a glance; anything else passes through. A write may
// hold several lines (a buffered log writes what it gathered at once).
type spendSummary struct{ w io.Writer }

func (s *spendSummary) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		if err := s.line(line); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (s *spendSummary) line(p []byte) error {
	var rec struct {
		Service      string `json:"service"`
		Model        string `json:"model"`
		InputTokens  int64  `json:"input_tokens"`
		OutputTokens int64  `json:"output_tokens"`
		TotalUSD     string `json:"total_usd"`
		RequestID    string `json:"request_id"`
	}
	if err := json.Unmarshal(p, &rec); err != nil || rec.TotalUSD == "" {
		_, err := s.w.Write(p)
		return err
	}
	_, err := fmt.Fprintf(s.w, "spend: $%s  %s  %s  %d input + %d output tokens  (%s)\n",
		rec.TotalUSD, rec.Service, rec.Model, rec.InputTokens, rec.OutputTokens, rec.RequestID)
	return err
}
