package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// gate holds every Messages request at the fake upstream until released,
// so that all the holds of a wave are live at once and the number the cap
// admits does not depend on timing.
type gate struct {
	mu      sync.Mutex
	open    chan struct{}
	arrived atomic.Int64
}

func newGate() *gate {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gate) shut() {
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

func (g *gate) release() {
	g.mu.Lock()
	close(g.open)
	g.mu.Unlock()
}

func (g *gate) wait(ctx context.Context) {
	g.arrived.Add(1)
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// countingTransport counts HTTP attempts; safe for concurrent use.
type countingTransport struct {
	n  atomic.Int64
	rt http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

// probeBodyLen returns the size of the body the SDK sends for params,
// without any network: the estimate depends on it.
func probeBodyLen(t *testing.T, params anthropic.MessageNewParams) int64 {
	t.Helper()
	var n int64
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		b, _ := io.ReadAll(r.Body)
		n = int64(len(b))
		body := `{"id":"msg_probe","type":"message","role":"assistant","model":"claude-sonnet-4-6","content":[],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}`
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
	})
	c := anthropic.NewClient(option.WithBaseURL("http://probe.invalid"), option.WithAPIKey("x"),
		option.WithHTTPClient(&http.Client{Transport: rt}))
	if _, err := c.Messages.New(context.Background(), params); err != nil {
		t.Fatalf("probe: %v", err)
	}
	return n
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// level is one budget's state from GET /admin/budgets.
type level struct {
	limit, spent, reserved money.Nanos
	enforce                bool
}

func budgetLevels(ctx context.Context, adminURL string) (map[string]level, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, adminURL+"/admin/budgets", nil)
	req.Header.Set("Authorization", "Bearer "+testutil.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /admin/budgets: %d %s", resp.StatusCode, raw)
	}
	var body struct {
		Budgets []struct {
			Scope, Name, ID string
			Limit           string `json:"limit_usd"`
			Spent           string `json:"spent_usd"`
			Reserved        string `json:"reserved_usd"`
			Enforce         bool
		}
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("GET /admin/budgets: %w", err)
	}
	out := map[string]level{}
	for _, b := range body.Budgets {
		var l level
		var errs [3]error
		l.limit, errs[0] = money.Parse(b.Limit)
		l.spent, errs[1] = money.Parse(b.Spent)
		l.reserved, errs[2] = money.Parse(b.Reserved)
		if err := errors.Join(errs[:]...); err != nil {
			return nil, fmt.Errorf("budget %s/%s/%s: %w", b.Scope, b.Name, b.ID, err)
		}
		l.enforce = b.Enforce
		out[b.Scope+"/"+b.Name+"/"+b.ID] = l
	}
	return out, nil
}

func mustLevels(t *testing.T, adminURL string) map[string]level {
	t.Helper()
	ls, err := budgetLevels(context.Background(), adminURL)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// waitLevel polls adminURL until budget key reaches spent with nothing
// reserved (settlement runs just after each response ends).
func waitLevel(t *testing.T, adminURL, key string, spent money.Nanos) level {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		l := mustLevels(t, adminURL)[key]
		if l.spent == spent && l.reserved == 0 {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: spent %s reserved %s, want spent %s reserved 0", key, l.spent, l.reserved, spent)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startReplicas starts n gateway processes sharing one Redis.
func startReplicas(t *testing.T, n int, upstream string, policy testpolicy.Policy, extra ...string) []*testutil.Process {
	t.Helper()
	bin := testutil.BuildBinary(t)
	rd := testutil.StartRedis(t)
	e := env(t, upstream, policy)
	e["CLADE_REDIS_URL"] = rd.URL()
	// Per-request holds, whose admissions and gauges these tests count
	// exactly; the grants test sets its window.
	e["CLADE_GRANT_WINDOW"] = "0"
	for i := 0; i+1 < len(extra); i += 2 {
		e[extra[i]] = extra[i+1]
	}
	out := make([]*testutil.Process, n)
	for i := range out {
		out[i] = testutil.StartProcess(t, bin, e)
	}
	return out
}

// budgetGaugeLines returns the budget level series of a scrape, sorted as
// the registry writes them.
func budgetGaugeLines(metrics string) string {
	var out []string
	for _, line := range strings.Split(metrics, "\n") {
		for _, p := range []string{"clade_gateway_budget_limit_usd{", "clade_gateway_budget_spent_usd{", "clade_gateway_budget_reserved_usd{"} {
			if strings.HasPrefix(line, p) {
				out = append(out, line)
			}
		}
	}
	return strings.Join(out, "\n")
}
