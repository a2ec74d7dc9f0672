package notify

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testNow = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

var teamSearch = budget.Budget{
	Scope: budget.ScopeTeam, Name: "search", ID: "monthly", Period: budget.Monthly,
	Limit: money.USD(5000), Enforce: true, AlertAt: []float64{0.5, 0.8},
}

func TestSentOncePerThresholdAcrossInstances(t *testing.T) {
	srv := newHookServer(t)
	store := newFakeStore()
	store.setSpent(teamSearch, money.USD(4250)) // 85%: past 0.5 and 0.8, not exhausted
	s := setup{store: store, budgets: []budget.Budget{teamSearch},
		webhooks: []policy.Webhook{{Name: "finance", URL: policy.Secret(srv.URL)}}}
	a, b := s.notifier(t), s.notifier(t)
	for range 3 {
		checkAndWait(t, a)
		checkAndWait(t, b)
	}
	got := srv.received()
	if len(got) != 2 {
		t.Fatalf("got %d webhooks, want 2 (one per crossed threshold): %q", len(got), got)
	}
	var texts []string
	for _, body := range got {
		texts = append(texts, slackText(t, body))
	}
	for _, want := range []string{"past its 50% alert threshold", "past its 80% alert threshold"} {
		if !strings.Contains(strings.Join(texts, "\n"), want) {
			t.Errorf("no webhook says %q; got %q", want, texts)
		}
	}
	// The monthly window ends 2026-12-01; claims outlive it by a day.
	ttl := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC).Sub(testNow)
	want := map[string]time.Duration{
		"team:search:monthly:20261101:0.5": ttl,
		"team:search:monthly:20261101:0.8": ttl,
	}
	if diff := cmp.Diff(want, store.claimed()); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}

	// Spending the rest crosses exhaustion: exactly one more webhook.
	store.setSpent(teamSearch, money.USD(5000))
	checkAndWait(t, b)
	checkAndWait(t, a)
	got = srv.received()
	if len(got) != 3 {
		t.Fatalf("got %d webhooks after exhaustion, want 3", len(got))
	}
	if txt := slackText(t, got[2]); !strings.HasPrefix(txt, "Budget exhausted: team \"search\"") {
		t.Errorf("exhaustion text = %q", txt)
	}
}

func TestEveryWebhookGetsEachClaimedThreshold(t *testing.T) {
	slack, js := newHookServer(t), newHookServer(t)
	store := newFakeStore()
	store.setSpent(teamSearch, money.USD(2500))
	s := setup{store: store, budgets: []budget.Budget{teamSearch}, webhooks: []policy.Webhook{
		{Name: "slack", URL: policy.Secret(slack.URL), Format: "slack"},
		{Name: "json", URL: policy.Secret(js.URL), Format: "json"},
	}}
	checkAndWait(t, s.notifier(t))
	if len(slack.received()) != 1 || len(js.received()) != 1 {
		t.Fatalf("slack got %d, json got %d; want 1 each", len(slack.received()), len(js.received()))
	}
	for _, h := range []*hookServer{slack, js} {
		if h.ctypes[0] != "application/json" {
			t.Errorf("Content-Type = %q", h.ctypes[0])
		}
	}
}

func TestNoSendBelowThreshold(t *testing.T) {
	dryRun := budget.Budget{Scope: budget.ScopeService, Name: "rec", ID: "trial-cap",
		Period: budget.Monthly, Limit: money.USD(200), Enforce: false}
	tests := []struct {
		name  string
		b     budget.Budget
		spent money.Nanos
	}{
		{"one nano below 50%", teamSearch, money.USD(2500) - 1},
		{"nothing spent", teamSearch, 0},
		{"credited below zero", teamSearch, -money.USD(1)},
		{"dry-run budget without alert_at is never announced", dryRun, money.USD(1000)},
		{"zero limit is a deliberate block", budget.Budget{Scope: budget.ScopeService, Name: "x", ID: "daily",
			Period: budget.Daily, Limit: 0, Enforce: true, AlertAt: []float64{0.5}}, money.USD(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newHookServer(t)
			store := newFakeStore()
			store.setSpent(tt.b, tt.spent)
			s := setup{store: store, budgets: []budget.Budget{tt.b},
				webhooks: []policy.Webhook{{Name: "w", URL: policy.Secret(srv.URL)}}}
			checkAndWait(t, s.notifier(t))
			if got := srv.received(); len(got) != 0 {
				t.Errorf("sent %q, want nothing", got)
			}
			if c := store.claimed(); len(c) != 0 {
				t.Errorf("claimed %v, want nothing", c)
			}
		})
	}
}

func TestNoWebhooksClaimsNothing(t *testing.T) {
	store := newFakeStore()
	store.setSpent(teamSearch, money.USD(5000))
	checkAndWait(t, setup{store: store, budgets: []budget.Budget{teamSearch}}.notifier(t))
	if c := store.claimed(); len(c) != 0 {
		t.Errorf("claimed %v with no webhooks configured; a later webhook would never hear of it", c)
	}
}

func TestRetriedAfterServerErrors(t *testing.T) {
	srv := newHookServer(t, 500, 503, 429)
	store := newFakeStore()
	store.setSpent(teamSearch, money.USD(2600))
	reg := prometheus.NewRegistry()
	s := setup{store: store, budgets: []budget.Budget{teamSearch}, reg: reg,
		webhooks: []policy.Webhook{{Name: "w", URL: policy.Secret(srv.URL)}}}
	n := s.notifier(t)
	checkAndWait(t, n)
	got := srv.received()
	if len(got) != 4 {
		t.Fatalf("server saw %d attempts, want 4 (three failures then success)", len(got))
	}
	for _, b := range got[1:] {
		if b != got[0] {
			t.Errorf("retry body %q differs from first %q", b, got[0])
		}
	}
	wantMetrics(t, reg, map[string]float64{"sent": 1, "retried": 3, "failed": 0})
}

func TestGivesUp(t *testing.T) {
	tests := []struct {
		name         string
		codes        []int
		wantAttempts int
		want         map[string]float64
	}{
		{"attempts spent on 5xx", []int{500, 500, 500, 500, 500, 500}, 5,
			map[string]float64{"sent": 0, "retried": 4, "failed": 1}},
		{"4xx is permanent", []int{404}, 1,
			map[string]float64{"sent": 0, "retried": 0, "failed": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newHookServer(t, tt.codes...)
			store := newFakeStore()
			store.setSpent(teamSearch, money.USD(2600))
			reg := prometheus.NewRegistry()
			s := setup{store: store, budgets: []budget.Budget{teamSearch}, reg: reg,
				webhooks: []policy.Webhook{{Name: "w", URL: policy.Secret(srv.URL)}}}
			n := s.notifier(t)
			checkAndWait(t, n)
			checkAndWait(t, n) // claimed already: a failed delivery is not resent
			if got := len(srv.received()); got != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", got, tt.wantAttempts)
			}
			wantMetrics(t, reg, tt.want)
		})
	}
}

func TestJSONFormat(t *testing.T) {
	srv := newHookServer(t)
	store := newFakeStore()
	svc := budget.Budget{Scope: budget.ScopeService, Name: "recommendation", ID: "daily",
		Period: budget.Daily, Limit: mustParse(t, "50"), Enforce: true}
	store.setSpent(svc, mustParse(t, "50.000000001"))
	s := setup{store: store, budgets: []budget.Budget{svc},
		webhooks: []policy.Webhook{{Name: "j", URL: policy.Secret(srv.URL), Format: "json"}}}
	checkAndWait(t, s.notifier(t))
	got := srv.received()
	if len(got) != 1 {
		t.Fatalf("got %d webhooks, want 1", len(got))
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(got[0]), &m); err != nil {
		t.Fatal(err)
	}
	text, _ := m["text"].(string)
	delete(m, "text")
	want := map[string]any{
		"event":        "budget_exhausted",
		"scope":        "service",
		"name":         "recommendation",
		"id":           "daily",
		"period":       "daily",
		"enforced":     true,
		"threshold":    1.0,
		"spent_usd":    "50.000000001",
		"limit_usd":    "50",
		"window_start": "2026-11-27T00:00:00Z",
		"resets_at":    "2026-11-28T00:00:00Z",
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("json payload (-want +got):\n%s", diff)
	}
	if !strings.Contains(text, "50.000000001 USD of 50 USD") {
		t.Errorf("text = %q", text)
	}
	if c := store.claimed(); c["service:recommendation:daily:20261127:1"] != 38*time.Hour {
		t.Errorf("claims = %v, want the daily key with a 38h TTL (14h to midnight plus a day)", c)
	}
}

func TestTotalBudgetClaimTTL(t *testing.T) {
	srv := newHookServer(t)
	store := newFakeStore()
	b := budget.Budget{Scope: budget.ScopeWorkspace, Name: "sandbox", ID: "total",
		Period: budget.Total, Limit: money.USD(100), AlertAt: []float64{0.9}}
	store.setSpent(b, money.USD(95))
	s := setup{store: store, budgets: []budget.Budget{b},
		webhooks: []policy.Webhook{{Name: "j", URL: policy.Secret(srv.URL), Format: "json"}}}
	checkAndWait(t, s.notifier(t))
	want := map[string]time.Duration{"workspace:sandbox:total:all:0.9": 400 * 24 * time.Hour}
	if diff := cmp.Diff(want, store.claimed()); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	got := srv.received()
	if len(got) != 1 {
		t.Fatalf("got %d webhooks, want 1", len(got))
	}
	if strings.Contains(got[0], "resets_at") || strings.Contains(got[0], "window_start") {
		t.Errorf("a total budget has no window, got %s", got[0])
	}
	if !strings.Contains(got[0], `"event":"budget_threshold"`) {
		t.Errorf("a non-enforced budget is never exhausted: %s", got[0])
	}
}

func TestStoreErrorsSendNothing(t *testing.T) {
	srv := newHookServer(t)
	store := newFakeStore()
	store.setSpent(teamSearch, money.USD(5000))
	store.claimErr = errors.New("redis down")
	s := setup{store: store, budgets: []budget.Budget{teamSearch},
		webhooks: []policy.Webhook{{Name: "w", URL: policy.Secret(srv.URL)}}}
	n := s.notifier(t)
	checkAndWait(t, n)
	if got := srv.received(); len(got) != 0 {
		t.Fatalf("sent %d webhooks without a claim", len(got))
	}
	// Unclaimed thresholds are tried again once the store is back.
	store.mu.Lock()
	store.claimErr = nil
	store.statusErr = errors.New("redis down")
	store.mu.Unlock()
	if err := n.check(context.Background()); err == nil {
		t.Fatal("check with a failing status read returned nil")
	}
	store.mu.Lock()
	store.statusErr = nil
	store.mu.Unlock()
	checkAndWait(t, n)
	if got := srv.received(); len(got) != 3 {
		t.Fatalf("got %d webhooks after recovery, want 3 (0.5, 0.8, exhausted)", len(got))
	}
}

func TestWebhookURLNeverLogged(t *testing.T) {
	// A Slack-style URL whose path is the credential, on a server that
	// refuses, and one that is closed (a transport error quoting the URL).
	srv := newHookServer(t, 500, 500, 500, 500, 500)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	const secretPath = "/services/T000/B000/XXXXSECRETXXXX"
	core, logs := observer.New(zapcore.DebugLevel)
	store := newFakeStore()
	store.setSpent(teamSearch, money.USD(2600))
	s := setup{store: store, budgets: []budget.Budget{teamSearch}, log: zap.New(core),
		webhooks: []policy.Webhook{
			{Name: "refusing", URL: policy.Secret(srv.URL + secretPath)},
			{Name: "dead", URL: policy.Secret(dead.URL + secretPath)},
			{Name: "malformed", URL: policy.Secret("http://[::1" + secretPath)},
		}}
	checkAndWait(t, s.notifier(t))
	if logs.Len() == 0 {
		t.Fatal("no log entries: the test would prove nothing")
	}
	for _, e := range logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += " " + k + "=" + toString(v)
		}
		if strings.Contains(line, "SECRET") || strings.Contains(line, srv.URL) {
			t.Errorf("log leaks the webhook URL: %s", line)
		}
	}
	if n := logs.FilterMessage("webhook not delivered, giving up").Len(); n != 3 {
		t.Errorf("%d give-up entries, want one per webhook", n)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	// A server that always fails keeps a delivery in backoff; cancelling
	// Run must end it and leave no goroutine behind (goleak checks).
	srv := newHookServer(t, 500, 500, 500, 500, 500)
	store := newFakeStore()
	store.setSpent(teamSearch, money.USD(2600))
	reg := prometheus.NewRegistry()
	s := setup{store: store, budgets: []budget.Budget{teamSearch}, reg: reg,
		webhooks: []policy.Webhook{{Name: "w", URL: policy.Secret(srv.URL)}},
		cfg: func(c *Config) {
			c.Interval = time.Millisecond
			c.BaseBackoff, c.MaxBackoff = time.Hour, time.Hour
		}}
	n := s.notifier(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	for len(srv.received()) == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := testutil.ToFloat64(n.metrics.failed); got != 1 {
		t.Errorf("failed = %v, want 1 (the abandoned retry)", got)
	}
}

func TestNewRejectsIncompleteConfig(t *testing.T) {
	_, err := New(Config{})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("New(Config{}) = %v, want ErrConfig", err)
	}
	for _, field := range []string{"Status", "Claims", "Budgets", "Webhooks"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not name %s", err, field)
		}
	}
}
