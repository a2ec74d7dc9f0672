package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

const adminToken = "clade_admin_test"

func setup(t *testing.T, reload func() error) (http.Handler, *observer.ObservedLogs) {
	t.Helper()
	return setupWith(t, reload, prometheus.NewRegistry(), "")
}

// setupWith is setup with the admin metrics in reg and the admin token
// named tokenName in the policy ("" leaves it unnamed).
func setupWith(t *testing.T, reload func() error, reg prometheus.Registerer, tokenName string) (http.Handler, *observer.ObservedLogs) {
	t.Helper()
	named := ""
	if tokenName != "" {
		named = ", name: " + tokenName
	}
	dir := t.TempDir()
	sum := sha256.Sum256([]byte(adminToken))
	src := `
workspaces:
  production:
    keys: [{name: k, env: KEY}]
teams:
  search:
    budgets: [{period: monthly, limit_usd: 5000, alert_at: [0.5]}]
services:
  recommendation:
    team: search
    workspace: production
    budgets: [{period: daily, limit_usd: 50}, {id: all-time, period: total, limit_usd: 1000}]
admin:
  tokens: [{sha256: "` + hex.EncodeToString(sum[:]) + `"` + named + `}]
`
	path := filepath.Join(dir, "clade.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(path, policy.LoadOptions{Getenv: func(string) string { return "k" }, ResolveSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	st, err := boltstore.Open(filepath.Join(dir, "b.db"), storeopts.Options{Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	core, logs := observer.New(zap.InfoLevel)
	if reload == nil {
		reload = func() error { return nil }
	}
	return New(Options{Policy: func() *policy.Policy { return p }, Store: st, Reload: reload,
		Gatherer: prometheus.NewRegistry(), Registerer: reg, Logger: zap.New(core)}), logs
}

func do(h http.Handler, method, path, token, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestAuthRequired(t *testing.T) {
	h, _ := setup(t, nil)
	for _, tok := range []string{"", "wrong", adminToken + "x"} {
		if w := do(h, "GET", "/admin/budgets", tok, ""); w.Code != http.StatusUnauthorized {
			t.Errorf("token %q: %d", tok, w.Code)
		}
	}
	if w := do(h, "GET", "/healthz", "", ""); w.Code != 200 {
		t.Errorf("healthz %d", w.Code)
	}
	if w := do(h, "GET", "/readyz", "", ""); w.Code != 200 {
		t.Errorf("readyz %d: %s", w.Code, w.Body)
	}
}

func TestBudgetsAndAdjust(t *testing.T) {
	h, logs := setup(t, nil)
	w := do(h, "POST", "/admin/budgets/adjust", adminToken,
		`{"scope":"service","name":"recommendation","id":"daily","amount_usd":"12.345678901","reason":"incident 42","actor":"alice"}`)
	if w.Code != 200 {
		t.Fatalf("adjust %d: %s", w.Code, w.Body)
	}
	w = do(h, "GET", "/admin/budgets", adminToken, "")
	var got struct {
		Budgets []map[string]any `json:"budgets"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Budgets) != 3 {
		t.Fatalf("%d budgets: %s", len(got.Budgets), w.Body)
	}
	daily := got.Budgets[1] // sorted by scope, name, id: "all-time" < "daily"
	want := map[string]any{"scope": "service", "name": "recommendation", "id": "daily", "period": "daily",
		"window_start": "2026-11-27T00:00:00Z", "resets_at": "2026-11-28T00:00:00Z", "limit_usd": "50",
		"spent_usd": "12.345678901", "reserved_usd": "0", "remaining_usd": "37.654321099", "enforce": true}
	for k, v := range want {
		if daily[k] != v {
			t.Errorf("daily[%s] = %v, want %v", k, daily[k], v)
		}
	}
	total := got.Budgets[0]
	if total["id"] != "all-time" || total["window_start"] != nil || total["resets_at"] != nil {
		t.Errorf("total budget %v", total)
	}
	if logs.FilterField(zap.String("audit", "budget_adjust")).FilterField(zap.String("reason", "incident 42")).Len() != 1 {
		t.Errorf("adjustment not audit-logged: %v", logs.All())
	}
}

func TestAdjustRejects(t *testing.T) {
	h, _ := setup(t, nil)
	for body, code := range map[string]int{
		`{"scope":"service","name":"recommendation","id":"daily","amount_usd":"1.5"}`:                     400, // no reason
		`{"scope":"service","name":"recommendation","id":"daily","amount_usd":"1.5e3","reason":"x"}`:      400,
		`{"scope":"service","name":"recommendation","id":"daily","amount_usd":0.5,"reason":"x"}`:          400,
		`{"scope":"service","name":"nobody","id":"daily","amount_usd":"1","reason":"x"}`:                  404,
		`{"scope":"service","name":"recommendation","id":"daily","amount_usd":"1","reason":"x","more":1}`: 400,
	} {
		if w := do(h, "POST", "/admin/budgets/adjust", adminToken, body); w.Code != code {
			t.Errorf("%s: %d, want %d (%s)", body, w.Code, code, w.Body)
		}
	}
}

func TestReloadReportsProblems(t *testing.T) {
	h, _ := setup(t, func() error { return errors.New("clade.yaml:3: services.x.team: team \"nope\" is not defined") })
	w := do(h, "POST", "/admin/reload", adminToken, "")
	if w.Code != 400 || !strings.Contains(w.Body.String(), `team \"nope\" is not defined`) || !strings.Contains(w.Body.String(), "running policy stays") {
		t.Errorf("reload %d: %s", w.Code, w.Body)
	}
}
