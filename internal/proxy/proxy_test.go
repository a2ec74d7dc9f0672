package proxy

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testKey   = "sk-ant-test-workspace-key"
	testToken = "clade_sk_test_service_token"
)

func testPolicy(t testing.TB, onFailure string) *policy.Policy {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "clade.yaml")
	src := `
workspaces:
  production:
    keys: [{name: k, env: KEY}]
teams:
  search: {}
services:
  recommendation:
    team: search
    workspace: production
    on_store_failure: ` + onFailure + `
    tokens: [{sha256: "` + sha(testToken) + `"}]
    budgets: [{period: daily, limit_usd: 10}]
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(path, policy.LoadOptions{Getenv: func(string) string { return testKey }, ResolveSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// downStore is a store that cannot be reached: the proxy's reaction to it
// is what is under test, not the store.
type downStore struct{}

func (downStore) Reserve(context.Context, budget.Hold) (budget.Reservation, error) {
	return budget.Reservation{}, budget.ErrUnavailable
}
func (downStore) Extend(context.Context, budget.Reservation, time.Duration) error {
	return budget.ErrUnavailable
}
func (downStore) Settle(context.Context, budget.Reservation, money.Nanos) error {
	return budget.ErrUnavailable
}

type memJournal struct {
	mu      sync.Mutex
	entries map[string]money.Nanos
}

func (j *memJournal) Append(r budget.Reservation, actual money.Nanos) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries[r.RequestID] += actual
	return nil
}

func newTestHandler(t *testing.T, onFailure string, b Budgeter) (*Handler, *fakeupstream.Server, *memJournal) {
	t.Helper()
	f := fakeupstream.New(testKey)
	up := httptest.NewServer(f)
	t.Cleanup(up.Close)
	u, _ := http.NewRequest("GET", up.URL, nil)
	tbl, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	st := NewState(testPolicy(t, onFailure), tbl, nil)
	j := &memJournal{entries: map[string]money.Nanos{}}
	tr := NewTransport()
	t.Cleanup(tr.CloseIdleConnections)
	h, err := New(Options{Upstream: u.URL, State: func() *State { return st }, Budget: b, Journal: j, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	return h, f, j
}

func post(h http.Handler, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/v1/messages", strings.NewReader(body))
	r.Header.Set("x-api-key", testToken)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

const okBody = `{"model":"claude-sonnet-4-6","max_tokens":1024,"messages":[{"role":"user","content":"hi"}]}`

// A store that cannot be reached must refuse, not fail open: the classic
// limiter bug is an exception swallowed into "allowed".
func TestStoreDownFailsClosed(t *testing.T) {
	h, f, j := newTestHandler(t, "reject", downStore{})
	w := post(h, okBody)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("got %d retry-after %q: %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if !strings.Contains(w.Body.String(), `"type":"api_error"`) {
		t.Errorf("body %s", w.Body)
	}
	if f.Messages() != 0 {
		t.Errorf("%d requests reached the upstream with the store down", f.Messages())
	}
	// The hold the store may have placed after the call gave up is
	// released by a journaled zero settlement.
	h.Wait()
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.entries) != 1 {
		t.Fatalf("journal has %d entries, want the one zero release", len(j.entries))
	}
	for _, v := range j.entries {
		if v != 0 {
			t.Errorf("refused request journaled at %d nanos, want 0", v)
		}
	}
}

// In allow mode the request goes through, and its settlement lands in the
// journal with the actual cost: forwarded, but never unmetered.
func TestStoreDownAllowJournals(t *testing.T) {
	h, f, j := newTestHandler(t, "allow", downStore{})
	w := post(h, okBody)
	if w.Code != http.StatusOK {
		t.Fatalf("got %d: %s", w.Code, w.Body)
	}
	h.Wait()
	if f.Messages() != 1 {
		t.Fatalf("upstream saw %d", f.Messages())
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.entries) != 1 {
		t.Fatalf("journal has %d entries", len(j.entries))
	}
	for _, v := range j.entries {
		if v != 8_100_000 { // 1200 × $3/MTok + 300 × $15/MTok
			t.Errorf("journaled %d nanos, want 8100000", v)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		method, path string
		want         route
	}{
		{"POST", "/v1/messages", routeMessages},
		{"GET", "/v1/messages", routeRefused},
		{"POST", "/v1/messages/count_tokens", routeCountTokens},
		{"POST", "/v1/messages/batches", routeBatches},
		{"GET", "/v1/messages/batches/msgbatch_1/results", routeBatches},
		{"GET", "/v1/models", routeFree},
		{"GET", "/v1/models/claude-sonnet-4-6", routeFree},
		{"POST", "/v1/files", routeFiles},
		{"POST", "/v1/complete", routeRefused},
		{"GET", "/v1/organizations/api_keys", routeRefused},
		{"POST", "/v1/sessions/abc/events", routeRefused},
		{"POST", "/v1/messagesX", routeRefused},
		{"GET", "/", routeRefused},
	}
	for _, tt := range tests {
		if got, _ := classify(tt.method, tt.path); got != tt.want {
			t.Errorf("classify(%s %s) = %v, want %v", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestParseMessagesServerGrowth(t *testing.T) {
	tests := []struct {
		body   string
		server bool
	}{
		{`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}]}`, false},
		{`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search_20250305","name":"web_search"}]}`, true},
		{`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"get_weather","input_schema":{}}]}`, false},
		{`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"file","file_id":"file_1"}}]}]}`, true},
		{`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"mcp_servers":[{"type":"url","url":"https://x"}]}`, true},
		{`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"container_upload","file_id":"file_2"}]}]}`, true},
		// An escaped key is the same key to the API.
		{`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"file","file\u005fid":"f"}}]}]}`, true},
		// Words in a message are not a reference.
		{`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"what is a file_id? and a \"file_id\"?"}]}`, false},
	}
	for _, tt := range tests {
		p, err := parseMessages([]byte(tt.body))
		if err != nil || p.ServerTools != tt.server {
			t.Errorf("%s: ServerTools = %v, %v; want %v", tt.body, p.ServerTools, err, tt.server)
		}
	}
}

func TestStatusForMapsEveryError(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	ex := &budget.ExceededError{Budget: budget.Budget{Scope: budget.ScopeTeam, Name: "search", ID: "monthly", Period: budget.Monthly, Limit: 5 * money.PerUSD},
		ResetsAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Spent: 5 * money.PerUSD}
	tests := []struct {
		err    error
		status int
		typ    string
	}{
		{ex, 402, "billing_error"},
		{fmtWrap(budget.ErrUnavailable), 503, "api_error"},
		{fmtWrap(budget.ErrStoreReset), 503, "api_error"},
		{&http.MaxBytesError{Limit: 10}, 413, "request_too_large"},
		{context.DeadlineExceeded, 504, "timeout_error"},
		{errors.New("connection refused"), 502, "api_error"},
		{rateLimited(1500 * time.Millisecond), 429, "rate_limit_error"},
	}
	for _, tt := range tests {
		e := statusFor(tt.err, now)
		if e.Status != tt.status || e.Type != tt.typ {
			t.Errorf("statusFor(%v) = %d %s, want %d %s", tt.err, e.Status, e.Type, tt.status, tt.typ)
		}
	}
	e := statusFor(ex, now)
	want := `Team "search" has reached its monthly budget "monthly" of $5 (spent $5, reserved $0); it resets at 2026-12-01T00:00:00Z.`
	if e.Msg != want || e.Header.Get("x-should-retry") != "false" || e.Code != "budget_exceeded" {
		t.Errorf("402 message %q header %v", e.Msg, e.Header)
	}
	if rl := rateLimited(1500 * time.Millisecond); rl.Header.Get("Retry-After") != "2" {
		t.Errorf("retry-after %q, want 2 (rounded up)", rl.Header.Get("Retry-After"))
	}
}

func fmtWrap(err error) error { return errors.Join(errors.New("budget: reserve"), err) }

func TestRewriteResultsURL(t *testing.T) {
	in := `{"id":"msgbatch_1","results_url":"https://api.anthropic.com/v1/messages/batches/msgbatch_1/results","x":1}`
	out, id, err := rewriteResultsURL([]byte(in), "https://gw.internal:8443")
	if err != nil || id != "msgbatch_1" || !strings.Contains(string(out), `"results_url":"https://gw.internal:8443/v1/messages/batches/msgbatch_1/results"`) {
		t.Errorf("got %s %s %v", out, id, err)
	}
	list := `{"data":[{"id":"a","results_url":"https://api.anthropic.com/v1/messages/batches/a/results"}],"has_more":false}`
	out, _, _ = rewriteResultsURL([]byte(list), "http://gw")
	if !strings.Contains(string(out), `"http://gw/v1/messages/batches/a/results"`) {
		t.Errorf("list not rewritten: %s", out)
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestCleanPath(t *testing.T) {
	for raw, want := range map[string]bool{
		"/v1/messages":                       true,
		"/v1/models/claude-sonnet-4-6":       true,
		"/v1/models/../complete":             false,
		"/v1/models/%2e%2e/complete":         false,
		"/v1/messages/batches/a%2Fb/results": false,
		"/v1//messages":                      false,
		"/v1/messages/":                      false,
	} {
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := cleanPath(u); got != want {
			t.Errorf("cleanPath(%s) = %v, want %v", raw, got, want)
		}
	}
}

// A client that accepts gzip (every Go client does by default) must not
// make the upstream compress what the meter has to read.
func TestGzipCapableClientIsMeteredExactly(t *testing.T) {
	var sawAE []string
	var mu sync.Mutex
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sawAE = append(sawAE, r.Header.Get("Accept-Encoding"))
		mu.Unlock()
		body := `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-6","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":1200,"output_tokens":300}}`
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzip.NewWriter(w)
			_, _ = gz.Write([]byte(body))
			_ = gz.Close()
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	defer up.Close()
	h, _, j := newTestHandler(t, "allow", downStore{})
	u, _ := url.Parse(up.URL)
	h.o.Upstream = u
	r := httptest.NewRequest("POST", "/v1/messages", strings.NewReader(okBody))
	r.Header.Set("x-api-key", testToken)
	r.Header.Set("Accept-Encoding", "gzip")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	h.Wait()
	if w.Code != 200 || w.Header().Get("Content-Encoding") != "" || !strings.Contains(w.Body.String(), `"input_tokens":1200`) {
		t.Fatalf("client got %d %q %s", w.Code, w.Header().Get("Content-Encoding"), w.Body)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, v := range j.entries {
		if v != 8_100_000 {
			t.Errorf("charged %d nanos, want 8100000 (priced from usage, not the estimate)", v)
		}
	}
	if len(j.entries) != 1 {
		t.Errorf("%d charges", len(j.entries))
	}
}

// A stream that outlives the hold's lease keeps its hold: read during the
// stream, the budget shows the estimate still reserved and nothing
// orphan-charged.
func TestLongStreamKeepsItsHold(t *testing.T) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "b.db"), storeopts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, f, _ := newTestHandler(t, "reject", st)
	h.o.HoldTTL = 300 * time.Millisecond
	f.Behave = func(*http.Request, string, bool) fakeupstream.Behavior {
		return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 1200, OutputTokens: 300}, EventSpacing: 150 * time.Millisecond}
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/messages", strings.NewReader(`{"model":"claude-sonnet-4-6","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("x-api-key", testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	daily := h.o.State().Policy.Services["recommendation"].Budgets
	time.Sleep(900 * time.Millisecond) // three leases into a ~1.2s stream
	mid, err := st.Status(context.Background(), daily)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	h.Wait()
	end, err := st.Status(context.Background(), daily)
	if err != nil {
		t.Fatal(err)
	}
	if mid[0].Spent != 0 || mid[0].Reserved == 0 {
		t.Errorf("mid-stream: spent %s reserved %s; the hold expired into an orphan charge", mid[0].Spent, mid[0].Reserved)
	}
	if end[0].Spent != 8_100_000 || end[0].Reserved != 0 {
		t.Errorf("after the stream: spent %d reserved %d, want 8100000 and 0", end[0].Spent, end[0].Reserved)
	}
}
