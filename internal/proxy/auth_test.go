package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

const otherToken = "clade_sk_test_other_service_token"

// authHandler is a gateway with two services (recommendation: testToken,
// indexer: otherToken) whose log lines the test reads.
func authHandler(t *testing.T) (*Handler, *fakeupstream.Server, *observer.ObservedLogs) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clade.yaml")
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
    tokens: [{sha256: "` + sha(testToken) + `"}]
    models: ["claude-sonnet-*"]
    budgets: [{period: daily, limit_usd: 10}]
  indexer:
    team: search
    workspace: production
    tokens: [{sha256: "` + sha(otherToken) + `"}]
    budgets: [{period: daily, limit_usd: 10}]
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(path, policy.LoadOptions{Getenv: func(string) string { return testKey }, ResolveSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	f := fakeupstream.New(testKey)
	up := httptest.NewServer(f)
	t.Cleanup(up.Close)
	u, _ := http.NewRequest("GET", up.URL, nil)
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "b.db"), storeopts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	core, logs := observer.New(zapcore.DebugLevel)
	st := NewState(p, tbl, nil)
	tr := NewTransport()
	t.Cleanup(tr.CloseIdleConnections)
	h, err := New(Options{Upstream: u.URL, State: func() *State { return st }, Budget: store,
		Journal: &memJournal{entries: map[string]money.Nanos{}}, Transport: tr, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	return h, f, logs
}

// Every authentication failure is a 401 with x-should-retry: false, a
// message saying what to change, and its own log reason; none echoes a
// credential.
func TestAuthenticationFailures(t *testing.T) {
	const anthropicKey = "sk-ant-api03-PASTEDWORKSPACEKEY0123456789"
	tests := []struct {
		name    string
		header  http.Header
		reason  string
		wantMsg []string
	}{
		{"missing", http.Header{}, "missing_credentials",
			[]string{"no credentials", "x-api-key", "Authorization: Bearer", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"}},
		{"empty x-api-key", http.Header{"X-Api-Key": {"  "}}, "missing_credentials", []string{"no credentials"}},
		{"unknown token", http.Header{"X-Api-Key": {"clade_sk_revoked_or_mistyped"}}, "unknown_token",
			[]string{"the token in x-api-key is not a service token of this gateway"}},
		{"unknown bearer token", http.Header{"Authorization": {"Bearer clade_sk_revoked_or_mistyped"}}, "unknown_token",
			[]string{"the token in Authorization: Bearer is not a service token"}},
		{"anthropic key as token", http.Header{"X-Api-Key": {anthropicKey}}, "anthropic_key_as_token",
			[]string{"send your service token, not an Anthropic key", "set ANTHROPIC_API_KEY to the service token"}},
		{"anthropic key as bearer", http.Header{"Authorization": {"Bearer " + anthropicKey}}, "anthropic_key_as_token",
			[]string{"Authorization: Bearer holds an Anthropic key", "send your service token, not an Anthropic key", "ANTHROPIC_AUTH_TOKEN"}},
		{"conflicting: anthropic key and unknown token", http.Header{"X-Api-Key": {anthropicKey}, "Authorization": {"Bearer clade_sk_mistyped"}},
			"conflicting_credentials", []string{"conflicting credentials", "x-api-key (an Anthropic key", "Authorization: Bearer (not a token of this gateway)",
				"unset ANTHROPIC_API_KEY", "set ANTHROPIC_AUTH_TOKEN to your service token"}},
		{"conflicting: two services", http.Header{"X-Api-Key": {testToken}, "Authorization": {"Bearer " + otherToken}},
			"conflicting_credentials", []string{"conflicting credentials", "service tokens of different services", "unset ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN"}},
		{"conflicting: two x-api-key values", http.Header{"X-Api-Key": {"clade_sk_a", "clade_sk_b"}},
			"conflicting_credentials", []string{"conflicting credentials", "once, in ANTHROPIC_API_KEY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, f, logs := authHandler(t)
			r := httptest.NewRequest("POST", "/v1/messages", strings.NewReader(okBody))
			r.Header = tt.header
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			var env struct {
				Error struct{ Type, Message string } `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
				t.Fatalf("body %s: %v", w.Body, err)
			}
			if w.Code != http.StatusUnauthorized || env.Error.Type != "authentication_error" {
				t.Errorf("got %d %s, want 401 authentication_error", w.Code, env.Error.Type)
			}
			if got := w.Header().Get("x-should-retry"); got != "false" {
				t.Errorf("x-should-retry = %q, want false", got)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(env.Error.Message, m) {
					t.Errorf("message %q lacks %q", env.Error.Message, m)
				}
			}
			refused := logs.FilterMessage("request refused").All()
			if len(refused) != 1 {
				t.Fatalf("%d refusal log lines, want 1", len(refused))
			}
			if got := refused[0].ContextMap()["reason"]; got != tt.reason {
				t.Errorf("log reason %v, want %s", got, tt.reason)
			}
			for _, v := range append(tt.header.Values("X-Api-Key"), tt.header.Values("Authorization")...) {
				v = strings.TrimPrefix(strings.TrimSpace(v), "Bearer ")
				if v != "" && strings.Contains(w.Body.String(), v) {
					t.Errorf("the answer echoes a credential: %s", w.Body)
				}
			}
			if f.Messages() != 0 {
				t.Error("a refused request reached the upstream")
			}
		})
	}
}

// Claude Code with ANTHROPIC_AUTH_TOKEN=<service token> and a stray
// ANTHROPIC_API_KEY sends both headers: the service token wins, and the
// Anthropic key goes nowhere.
func TestServiceTokenWinsOverStrayCredential(t *testing.T) {
	for _, tt := range []struct {
		name   string
		header http.Header
	}{
		{"bearer token, stray x-api-key", http.Header{"Authorization": {"Bearer " + testToken}, "X-Api-Key": {"sk-ant-api03-STRAY0123456789"}}},
		{"x-api-key token, stray bearer", http.Header{"X-Api-Key": {testToken}, "Authorization": {"Bearer sk-ant-oat01-STRAY0123456789"}}},
		{"x-api-key token, basic auth", http.Header{"X-Api-Key": {testToken}, "Authorization": {"Basic dXNlcjpwYXNz"}}},
		{"same token twice", http.Header{"X-Api-Key": {testToken}, "Authorization": {"bearer " + testToken}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, f, _ := authHandler(t)
			r := httptest.NewRequest("POST", "/v1/messages", strings.NewReader(okBody))
			r.Header = tt.header
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			h.Wait()
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			seen := f.Requests()
			if len(seen) != 1 {
				t.Fatalf("upstream saw %d requests", len(seen))
			}
			if got := seen[0].Header.Values("X-Api-Key"); len(got) != 1 || got[0] != testKey {
				t.Errorf("upstream x-api-key %q, want only the workspace key", got)
			}
			if got := seen[0].Header.Values("Authorization"); len(got) != 0 {
				t.Errorf("upstream got Authorization %q", got)
			}
		})
	}
}

// Refusals a retry cannot change tell the SDKs so before they look at the
// status.
func TestFinalRefusalsSayDoNotRetry(t *testing.T) {
	h, _, _ := authHandler(t)
	for _, tt := range []struct {
		name, path, body string
		status           int
	}{
		{"bad request", "/v1/messages", `{"model":`, 400},
		{"model not allowed", "/v1/messages", `{"model":"claude-opus-4-6","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`, 400},
		{"path refused", "/v1/complete", `{}`, 403},
		{"too large", "/v1/messages", strings.Repeat("a", 33<<20), 413},
	} {
		r := httptest.NewRequest("POST", tt.path, strings.NewReader(tt.body))
		r.Header.Set("x-api-key", testToken)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.status || w.Header().Get("x-should-retry") != "false" {
			t.Errorf("%s: %d x-should-retry %q, want %d false", tt.name, w.Code, w.Header().Get("x-should-retry"), tt.status)
		}
	}
}

// A model outside the allowlist reads as what it is, with the models the
// service may use.
func TestModelNotAllowedMessage(t *testing.T) {
	h, _, _ := authHandler(t)
	r := httptest.NewRequest("POST", "/v1/messages", strings.NewReader(`{"model":"claude-opus-4-6","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`))
	r.Header.Set("x-api-key", testToken)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"type":"invalid_request_error"`) {
		t.Fatalf("got %d %s", w.Code, w.Body)
	}
	for _, want := range []string{`model \"claude-opus-4-6\" is not allowed for service \"recommendation\"`, "claude-sonnet-*", "ANTHROPIC_MODEL"} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("body %s lacks %s", w.Body, want)
		}
	}
}
