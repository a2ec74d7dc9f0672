package reliability

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// Prices of claude-sonnet-4-6 in nano-USD per token: $3 input, $15 output.
// The suite's requests carry no cache_control, so they cannot write to the
// cache and the admission estimate takes every prompt token at the input
// rate.
const (
	model           = "claude-sonnet-4-6"
	inputNanos      = 3_000
	outputNanos     = 15_000
	worstInputNanos = inputNanos
	defaultCost     = 1200*inputNanos + 300*outputNanos // the fake's default usage: 8,100,000
)

// startRedis starts a private redis-server the test may kill, pause and
// restart (a shared CLADE_TEST_REDIS_ADDR server cannot be). Without
// redis-server on PATH the test fails, unless CLADE_TEST_NO_REDIS=1 opts
// out of every Redis test explicitly.
func startRedis(t *testing.T, args ...string) *testutil.Redis {
	t.Helper()
	if os.Getenv("CLADE_TEST_NO_REDIS") == "1" {
		t.Skip("CLADE_TEST_NO_REDIS=1: Redis tests disabled")
	}
	return testutil.StartRedis(t, args...)
}

// persistent are redis-server arguments for a server that comes back from
// SIGKILL with every acknowledged write (AOF, fsync per write).
var persistent = []string{"--appendonly", "yes", "--appendfsync", "always"}

// policySpec is the test policy's variable part.
type policySpec struct {
	Limit          string // total budget of service "recommendation", USD
	OnStoreFailure string // "" = reject (the default)
	RecToken       string // token of "recommendation"; default the canary token
}

// policy is one workspace whose key is the canary key, a team, and two
// services: "recommendation" (the canary token, a total budget) and
// "indexer" (another token, no budget of its own). Budgets are "total" so
// no window boundary can fall inside a run.
func (p policySpec) policy() testpolicy.Policy {
	if p.Limit == "" {
		p.Limit = "1000"
	}
	if p.OnStoreFailure == "" {
		p.OnStoreFailure = "reject"
	}
	if p.RecToken == "" {
		p.RecToken = testutil.CanaryToken
	}
	return testpolicy.Policy{
		OnStoreFailure: p.OnStoreFailure,
		Workspaces: []testpolicy.Workspace{{Name: "production",
			Keys: []testpolicy.Key{{Name: "prod-backend", Env: "TEST_WORKSPACE_KEY", Created: "2026-09-01"}}}},
		Teams: []testpolicy.Team{{Name: "search", Budgets: []testpolicy.Budget{testpolicy.Total("100000")}}},
		Services: []testpolicy.Service{
			{Name: "recommendation", Team: "search", Workspace: "production", Tokens: []string{p.RecToken},
				Budgets: []testpolicy.Budget{testpolicy.Total(p.Limit)}},
			{Name: "indexer", Team: "search", Workspace: "production", Tokens: []string{testutil.OtherToken}},
		},
		AdminTokens: []string{testutil.AdminToken},
	}
}

// policyYAML is the policy of p, as a file holds it.
func policyYAML(p policySpec) string { return p.policy().YAML() }

// gatewayEnv is the environment of a gateway on upstream with policy p;
// redisURL "" selects the embedded store. extra overrides anything.
func gatewayEnv(t *testing.T, upstream string, p policySpec, redisURL string, extra map[string]string) map[string]string {
	t.Helper()
	return policyEnv(t, upstream, p.policy(), redisURL, extra)
}

// policyEnv is gatewayEnv for a policy built by the test.
func policyEnv(t *testing.T, upstream string, p testpolicy.Policy, redisURL string, extra map[string]string) map[string]string {
	t.Helper()
	e := map[string]string{
		"CLADE_CONFIG":                  testutil.WritePolicy(t, t.TempDir(), p.YAML()),
		"CLADE_UPSTREAM_URL":            upstream,
		"CLADE_REDIS_URL":               redisURL,
		"CLADE_JOURNAL_REPLAY_INTERVAL": "200ms",
		"CLADE_BATCH_POLL_INTERVAL":     "1h",
		"TEST_WORKSPACE_KEY":            testutil.CanaryKey,
		// Per-request holds: these rows test what faults do to a reserve's
		// round trip. Rows with grants (the default with Redis) set it.
		"CLADE_GRANT_WINDOW": "0",
	}
	for k, v := range extra {
		e[k] = v
	}
	return e
}

func startUpstream(t *testing.T) (*fakeupstream.Server, *httptest.Server) {
	t.Helper()
	f := fakeupstream.New(testutil.CanaryKey)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// newClient is an HTTP client of the test's own, so that its idle
// connections can be closed before a goroutine leak check.
func newClient(t *testing.T, timeout time.Duration) *http.Client {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// messageBody is a Messages request of claude-sonnet-4-6.
func messageBody(maxTokens int, stream bool) string {
	return fmt.Sprintf(`{"model":%q,"max_tokens":%d,"stream":%t,"messages":[{"role":"user","content":"Hello, reliability suite"}]}`,
		model, maxTokens, stream)
}

// estimateOf is the admission estimate of body (pricing's documented rule):
// every byte of the body plus PromptOverheadTokens counted as a prompt
// token at the dearest rate the request can incur (input, without
// cache_control), plus max_tokens at the output rate, all times 1.1
// (rounded up) because the body does not name inference_geo and the
// workspace default may be "us".
func estimateOf(body string, maxTokens int) money.Nanos {
	base := (int64(len(body))+pricing.PromptOverheadTokens)*worstInputNanos + int64(maxTokens)*outputNanos
	return money.Nanos((base*11 + 9) / 10)
}

// reply is what a client saw of one request.
type reply struct {
	start, end time.Time
	status     int
	retryAfter string
	body       string
	err        error
}

func (r reply) latency() time.Duration { return r.end.Sub(r.start) }

func send(c *http.Client, url, token, body string, hdr map[string]string) reply {
	r := reply{start: time.Now()}
	req, err := http.NewRequest(http.MethodPost, url+"/v1/messages", strings.NewReader(body))
	if err != nil {
		r.err, r.end = err, time.Now()
		return r
	}
	req.Header.Set("x-api-key", token)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("content-type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		r.err, r.end = err, time.Now()
		return r
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.end, r.status, r.retryAfter, r.body, r.err = time.Now(), resp.StatusCode, resp.Header.Get("Retry-After"), string(b), err
	return r
}

// load sends requests from a few workers, each pausing between requests,
// until stop is called or every worker sent max requests.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	seen   []reply
}

func startLoad(c *http.Client, url, token, body string, workers, max int, pause time.Duration) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; i < max && ctx.Err() == nil; i++ {
				r := send(c, url, token, body, nil)
				l.mu.Lock()
				l.seen = append(l.seen, r)
				l.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
			}
		}()
	}
	return l
}

// replies returns what was seen so far.
func (l *load) replies() []reply {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]reply(nil), l.seen...)
}

// stop ends the load, waits for requests in flight, and returns every
// reply ordered by start time.
func (l *load) stop() []reply {
	l.cancel()
	l.wg.Wait()
	out := l.replies()
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// waitReply waits until some reply satisfies ok and returns it.
func (l *load) waitReply(t *testing.T, within time.Duration, ok func(reply) bool) (reply, bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, r := range l.replies() {
			if ok(r) {
				return r, true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return reply{}, false
}

// faultUnderLoad waits for ld's first success, lets it run for lead,
// injects fault, keeps it for hold, restores, and waits (up to 15s) for a
// success that started after the restore. It returns when the fault began
// and ended, and the replies once the load has run 200ms more.
func faultUnderLoad(t *testing.T, ld *load, lead, hold time.Duration, fault, restore func()) (began, ended time.Time, replies []reply) {
	t.Helper()
	if _, ok := ld.waitReply(t, 10*time.Second, func(x reply) bool { return x.status == 200 }); !ok {
		ld.stop()
		t.Fatal("no request succeeded before the fault")
	}
	time.Sleep(lead)
	began = time.Now()
	fault()
	time.Sleep(hold)
	ended = time.Now()
	restore()
	if _, ok := ld.waitReply(t, 15*time.Second, func(x reply) bool { return x.status == 200 && x.start.After(ended) }); !ok {
		t.Error("no request succeeded within 15s of the fault ending")
	}
	time.Sleep(200 * time.Millisecond)
	return began, ended, ld.stop()
}

// checkRefusal reports a 503 that lacks Retry-After or the Anthropic
// api_error envelope SDKs expect.
func checkRefusal(t *testing.T, x reply) {
	t.Helper()
	if x.retryAfter == "" || !strings.Contains(x.body, `"api_error"`) {
		t.Errorf("503 without Retry-After or api_error envelope: retry-after %q body %s", x.retryAfter, x.body)
	}
}

// statusCounts summarises replies as "200:12 503:40".
func statusCounts(rs []reply) string {
	m := map[string]int{}
	for _, r := range rs {
		k := strconv.Itoa(r.status)
		if r.err != nil {
			k = "error"
		}
		m[k]++
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func count(rs []reply, ok func(reply) bool) int {
	n := 0
	for _, r := range rs {
		if ok(r) {
			n++
		}
	}
	return n
}

func nanos(n money.Nanos) string { return strconv.FormatInt(int64(n), 10) }

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
