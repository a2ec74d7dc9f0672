package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// fitRig is a handler on the embedded store with fit_max_tokens as given,
// behind a fake upstream that records the bodies it is sent.
type fitRig struct {
	abort  atomic.Bool  // the upstream drops the next Messages request unanswered
	held   atomic.Int64 // what the budget held when the upstream dropped one
	h      *Handler
	f      *fakeupstream.Server
	store  *boltstore.Store
	reg    *prometheus.Registry
	budget budget.Budget
	mu     sync.Mutex
	bodies []string
}

func newFitRig(t *testing.T, fit string) *fitRig {
	t.Helper()
	dir := t.TempDir()
	src := fit + `
workspaces:
  production:
    keys: [{name: k, env: KEY}]
teams:
  search: {}
services:
  agent:
    team: search
    workspace: production
    tokens: [{sha256: "` + sha(testToken) + `"}]
    budgets: [{period: daily, limit_usd: 10}]
`
	if err := os.WriteFile(filepath.Join(dir, "clade.yaml"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(filepath.Join(dir, "clade.yaml"), policy.LoadOptions{Getenv: func(string) string { return testKey }, ResolveSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(dir, "b.db"), storeopts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	rig := &fitRig{f: fakeupstream.New(testKey), store: st, reg: prometheus.NewRegistry(), budget: p.Services["agent"].Budgets[0]}
	// By default count_tokens finds no fewer tokens than the byte bound.
	rig.f.CountTokens = func(b []byte) (int64, time.Duration) { return int64(len(b)) + 2048, 0 }
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/messages" {
			if rig.abort.CompareAndSwap(true, false) {
				if st, err := rig.store.Status(context.Background(), []budget.Budget{rig.budget}); err == nil {
					rig.held.Store(int64(st[0].Reserved))
				}
				panic(http.ErrAbortHandler)
			}
			b, _ := io.ReadAll(r.Body)
			rig.mu.Lock()
			rig.bodies = append(rig.bodies, string(b))
			rig.mu.Unlock()
			r.Body = io.NopCloser(strings.NewReader(string(b)))
		}
		rig.f.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	u, _ := http.NewRequest("GET", up.URL, nil)
	tbl, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	s := NewState(p, tbl, nil)
	tr := NewTransport()
	t.Cleanup(tr.CloseIdleConnections)
	rig.h, err = New(Options{Upstream: u.URL, State: func() *State { return s }, Budget: st,
		Journal: &memJournal{entries: map[string]money.Nanos{}}, Transport: tr, Registerer: rig.reg,
		FitWait: 300 * time.Millisecond, CountTokensTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rig.h.Wait)
	return rig
}

// leave sets the budget's spend so that room is left.
func (rig *fitRig) leave(t *testing.T, room money.Nanos) {
	t.Helper()
	rig.h.Wait() // earlier requests settled
	st, err := rig.store.Status(context.Background(), []budget.Budget{rig.budget})
	if err != nil {
		t.Fatal(err)
	}
	if err := rig.store.Adjust(context.Background(), rig.budget, st[0].Remaining()-room); err != nil {
		t.Fatal(err)
	}
}

func (rig *fitRig) lastBody() string {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	if len(rig.bodies) == 0 {
		return ""
	}
	return rig.bodies[len(rig.bodies)-1]
}

// agentBody is a Sonnet 4.6 request without cache_control, served in the
// global geography (no residency multiplier): its prompt is bounded at
// $3/MTok over (bytes + 2,048) tokens, output at $15/MTok.
func agentBody(maxTokens int, extra string) string {
	return fmt.Sprintf(`{"model":"claude-sonnet-4-6","inference_geo":"global","max_tokens":%d,%s"messages":[{"role":"user","content":"%s"}]}`,
		maxTokens, extra, strings.Repeat("x", 4000))
}

func promptBound(body string) money.Nanos { return money.Nanos(len(body)+2048) * 3_000 }

type refusal struct {
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Details struct {
			ErrorCode        string      `json:"error_code"`
			NeededUSD        json.Number `json:"needed_usd"`
			RemainingUSD     json.Number `json:"remaining_usd"`
			MaxTokensThatFit *int64      `json:"max_tokens_that_fit"`
		} `json:"details"`
	} `json:"error"`
}

func decodeRefusal(t *testing.T, w *httptest.ResponseRecorder) refusal {
	t.Helper()
	if w.Code != http.StatusPaymentRequired || w.Header().Get("x-should-retry") != "false" {
		t.Fatalf("got %d (x-should-retry %q): %s", w.Code, w.Header().Get("x-should-retry"), w.Body)
	}
	var r refusal
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// fittedCharge sends body to a rig with room for its prompt and 5,000
// output tokens, the upstream answering as b, and returns what was charged.
func fittedCharge(t *testing.T, body string, b fakeupstream.Behavior) (*fitRig, money.Nanos) {
	t.Helper()
	rig := newFitRig(t, "fit_max_tokens: true")
	rig.f.Behave = func(*http.Request, string, bool) fakeupstream.Behavior { return b }
	rig.leave(t, promptBound(body)+5_000*15_000+3)
	before, err := rig.store.Status(context.Background(), []budget.Budget{rig.budget})
	if err != nil {
		t.Fatal(err)
	}
	w := post(rig.h, body)
	if w.Code != http.StatusOK || w.Header().Get("clade-max-tokens-fitted") != "5000" {
		t.Fatalf("got %d, fitted %q: %s", w.Code, w.Header().Get("clade-max-tokens-fitted"), w.Body)
	}
	rig.h.Wait()
	after, err := rig.store.Status(context.Background(), []budget.Budget{rig.budget})
	if err != nil {
		t.Fatal(err)
	}
	if after[0].Reserved != 0 {
		t.Errorf("reserved %s after settling", after[0].Reserved)
	}
	return rig, after[0].Spent - before[0].Spent
}
