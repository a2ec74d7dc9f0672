package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// fakeStore is a StatusReader and a Claimer over plain maps. It stands in
// for the budget store's read side only; budget logic is not faked here.
type fakeStore struct {
	mu        sync.Mutex
	spent     map[string]money.Nanos // by Budget.Key(testNow)
	statusErr error
	claimErr  error
	claims    map[string]time.Duration
}

func newFakeStore() *fakeStore {
	return &fakeStore{spent: map[string]money.Nanos{}, claims: map[string]time.Duration{}}
}

func (f *fakeStore) setSpent(b budget.Budget, n money.Nanos) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spent[b.Key(testNow)] = n
}

func (f *fakeStore) Status(_ context.Context, bs []budget.Budget) ([]budget.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.statusErr != nil {
		return nil, f.statusErr
	}
	out := make([]budget.Status, len(bs))
	for i, b := range bs {
		start, end := b.Window(testNow)
		out[i] = budget.Status{Budget: b, WindowStart: start, ResetsAt: end, Spent: f.spent[b.Key(testNow)]}
	}
	return out, nil
}

func (f *fakeStore) ClaimNotification(_ context.Context, key string, ttl time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.claimErr != nil {
		return false, f.claimErr
	}
	if _, ok := f.claims[key]; ok {
		return false, nil
	}
	f.claims[key] = ttl
	return true, nil
}

func (f *fakeStore) claimed() map[string]time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]time.Duration, len(f.claims))
	for k, v := range f.claims {
		out[k] = v
	}
	return out
}

// hookServer is a webhook receiver on loopback that answers with codes in
// turn (then 200) and records every body it is sent.
type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	codes  []int
	bodies []string
	ctypes []string
}

func newHookServer(t *testing.T, codes ...int) *hookServer {
	t.Helper()
	h := &hookServer{codes: codes}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, string(b))
		h.ctypes = append(h.ctypes, r.Header.Get("Content-Type"))
		code := http.StatusOK
		if len(h.codes) > 0 {
			code, h.codes = h.codes[0], h.codes[1:]
		}
		h.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bodies...)
}

type setup struct {
	store    *fakeStore
	budgets  []budget.Budget
	webhooks []policy.Webhook
	reg      *prometheus.Registry
	log      *zap.Logger
	cfg      func(*Config)
}

func (s setup) notifier(t *testing.T) *Notifier {
	t.Helper()
	cfg := Config{
		Status:      s.store,
		Claims:      s.store,
		Budgets:     func() []budget.Budget { return s.budgets },
		Webhooks:    func() []policy.Webhook { return s.webhooks },
		BaseBackoff: time.Millisecond,
		MaxBackoff:  4 * time.Millisecond,
	}
	if s.cfg != nil {
		s.cfg(&cfg)
	}
	reg := s.reg
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	log := s.log
	if log == nil {
		log = zap.NewNop()
	}
	n, err := New(cfg, WithClock(func() time.Time { return testNow }), WithRegisterer(reg), WithLogger(log))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return n
}

// checkAndWait runs one poll and waits for the deliveries it started.
func checkAndWait(t *testing.T, n *Notifier) {
	t.Helper()
	if err := n.check(context.Background()); err != nil {
		t.Fatalf("check: %v", err)
	}
	n.wg.Wait()
}

func slackText(t *testing.T, body string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", body, err)
	}
	if len(m) != 1 {
		t.Fatalf("slack body %q has keys other than text", body)
	}
	s, ok := m["text"].(string)
	if !ok {
		t.Fatalf("slack body %q has no string text", body)
	}
	return s
}

func wantMetrics(t *testing.T, reg *prometheus.Registry, want map[string]float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "clade_gateway_notifications_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("clade_gateway_notifications_total (-want +got):\n%s", diff)
	}
}

func toString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func mustParse(t *testing.T, s string) money.Nanos {
	t.Helper()
	n, err := money.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
