package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// Agent-shaped traffic: a coding agent's turn sends a ~24 KB system prompt
// marked for caching and asks for max_tokens 32,000; the answer reads
// 22,000 cached tokens, writes 1,500 to the 5-minute cache, sends 12 fresh
// ones and writes 700.
const (
	agentMaxTokens = 32_000
	agentCacheRead = 22_000
	agentCacheW5m  = 1_500
	agentInput     = 12
	agentOutput    = 700
)

// agentTurnCost prices one turn's usage at claude-sonnet-4-6's rates
// ($3 input, $3.75 5-minute write, $0.30 cache read, $15 output per MTok).
func agentTurnCost(u anthropic.Usage) money.Nanos {
	return money.Nanos(u.InputTokens*3_000 + u.CacheCreationInputTokens*3_750 + u.CacheReadInputTokens*300 + u.OutputTokens*15_000)
}

func agentParams() anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-6",
		MaxTokens: agentMaxTokens,
		System: []anthropic.TextBlockParam{{
			Text:         strings.Repeat("You are a careful coding agent working in a Go repository. ", 400),
			CacheControl: anthropic.NewCacheControlEphemeralParam(),
		}},
		Messages: userMsg("The test in internal/proxy fails; find out why and fix it."),
	}
}

// agentUpstream is the fake upstream answering agent turns, behind a
// recorder that tells the client (in a test-only response header) which
// max_tokens the request it answers was forwarded with, and counts the
// requests forwarded lowered.
type agentUpstream struct {
	f       *fakeupstream.Server
	srv     *httptest.Server
	lowered atomic.Int64
}

func startAgentUpstream(t *testing.T, latency time.Duration) *agentUpstream {
	t.Helper()
	a := &agentUpstream{f: fakeupstream.New(testutil.CanaryKey)}
	a.f.Behave = func(*http.Request, string, bool) fakeupstream.Behavior {
		return fakeupstream.Behavior{TTFB: latency, EventSpacing: latency / 4, Text: []string{"Looking", " at", " the test"},
			Usage: fakeupstream.Usage{InputTokens: agentInput, CacheCreation: agentCacheW5m, Cache5m: agentCacheW5m,
				CacheRead: agentCacheRead, OutputTokens: agentOutput}}
	}
	// The prompt as count_tokens measures it.
	a.f.CountTokens = func([]byte) (int64, time.Duration) { return agentInput + agentCacheW5m + agentCacheRead, 0 }
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/messages" {
			body, _ := io.ReadAll(r.Body)
			var req struct {
				MaxTokens int64 `json:"max_tokens"`
			}
			_ = json.Unmarshal(body, &req)
			w.Header().Set("x-test-forwarded-max-tokens", strconv.FormatInt(req.MaxTokens, 10))
			if req.MaxTokens < agentMaxTokens {
				a.lowered.Add(1)
			}
			r.Body = io.NopCloser(strings.NewReader(string(body)))
		}
		a.f.ServeHTTP(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// turnResult is what an agent saw of one turn.
type turnResult struct {
	cost    money.Nanos
	fitted  bool
	refusal *anthropic.Error // a 402
}

// agentTurn runs one streamed turn through the official SDK and checks
// that a lowered request says so with the value it was forwarded with.
func agentTurn(t *testing.T, c anthropic.Client, params anthropic.MessageNewParams) turnResult {
	t.Helper()
	var resp *http.Response
	stream := c.Messages.NewStreaming(context.Background(), params, option.WithResponseInto(&resp))
	var acc anthropic.Message
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Error(err)
		}
	}
	err := stream.Err()
	var apiErr *anthropic.Error
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusPaymentRequired {
		return turnResult{refusal: apiErr}
	}
	if err != nil {
		t.Errorf("turn: %v", err)
		return turnResult{}
	}
	fitted, forwarded := resp.Header.Get("clade-max-tokens-fitted"), resp.Header.Get("x-test-forwarded-max-tokens")
	if fitted != "" && fitted != forwarded {
		t.Errorf("clade-max-tokens-fitted %q, but the request was forwarded with max_tokens %s", fitted, forwarded)
	}
	if fitted == "" && forwarded != strconv.Itoa(agentMaxTokens) {
		t.Errorf("forwarded with max_tokens %s without clade-max-tokens-fitted", forwarded)
	}
	return turnResult{cost: agentTurnCost(acc.Usage), fitted: fitted != ""}
}

// checkRefusal checks a final refusal says the cap is reached, with its
// details, and is not retried.
func checkRefusal(t *testing.T, e *anthropic.Error) {
	t.Helper()
	raw := e.RawJSON()
	var env struct {
		Error struct {
			Message string `json:"message"`
			Details struct {
				NeededUSD        json.Number `json:"needed_usd"`
				RemainingUSD     json.Number `json:"remaining_usd"`
				MaxTokensThatFit *int64      `json:"max_tokens_that_fit"`
			} `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(raw), &env); err != nil {
		t.Fatalf("refusal %s: %v", raw, err)
	}
	body := env.Error
	if body.Details.NeededUSD == "" || body.Details.RemainingUSD == "" || body.Details.MaxTokensThatFit == nil {
		t.Errorf("refusal without its details: %s", raw)
	}
	if e.Response.Header.Get("x-should-retry") != "false" {
		t.Errorf("refusal without x-should-retry: false")
	}
}

func overshootZero(t *testing.T, where, adminURL string) {
	t.Helper()
	_, metrics := get(t, adminURL+"/metrics", "")
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "clade_gateway_budget_overshoot_usd_total") && !strings.HasSuffix(line, " 0") {
			t.Errorf("%s: %s", where, line)
		}
	}
}

// TestFitOneAgentSpendsTheCap: one agent, sequential streamed turns, a $20
// daily cap, fit_max_tokens on, the embedded store: the first 402 comes
// only once at least 99% of the cap is spent.
// fitPolicy is the base policy with fit_max_tokens on and a $20 daily cap.
func fitPolicy() testpolicy.Policy {
	p := basePolicy(testpolicy.Daily("20"))
	p.FitMaxTokens = true
	return p
}

func TestFitOneAgentSpendsTheCap(t *testing.T) {
	up := startAgentUpstream(t, 0)
	limit := money.USD(20)
	gw := testutil.StartApp(t, env(t, up.srv.URL, fitPolicy()))
	client := sdk(gw, testutil.CanaryToken)
	params := agentParams()
	var spent money.Nanos
	var turns, fitted int
	var refusal *anthropic.Error
	for refusal == nil && turns < 2000 {
		r := agentTurn(t, client, params)
		if t.Failed() {
			return
		}
		spent += r.cost
		if r.fitted {
			fitted++
		}
		refusal = r.refusal
		turns++
	}
	if refusal == nil {
		t.Fatalf("no 402 after %d turns, %s spent", turns, spent)
	}
	checkRefusal(t, refusal)
	if !strings.Contains(refusal.RawJSON(), "has reached") {
		t.Errorf("final refusal does not say the cap is reached: %s", refusal.RawJSON())
	}
	final := waitLevel(t, gw.AdminURL, "service/recommendation/daily", spent)
	pct := 100 * float64(final.spent) / float64(limit)
	t.Logf("one agent: %d turns (%d fitted, %d forwarded lowered), first 402 with %s of %s spent (%.2f%%), count_tokens calls %d",
		turns-1, fitted, up.lowered.Load(), final.spent, limit, pct, up.f.CountTokensCalls())
	if final.spent > limit || pct < 99 {
		t.Errorf("first 402 at %.2f%% of the cap (%s), want at least 99%% and never above it", pct, final.spent)
	}
	if fitted == 0 || int64(fitted) != up.lowered.Load() {
		t.Errorf("%d turns carried clade-max-tokens-fitted, %d were forwarded lowered", fitted, up.lowered.Load())
	}
	overshootZero(t, "gateway", gw.AdminURL)
}

// TestFitEightAgentsTwoReplicas: 8 agents on 2 gateway processes sharing
// Redis (admission grants on, as shipped), a $20 daily cap, fit_max_tokens
// on: the first 402 comes only after 95% of the cap is spent, at least 98%
// is spent before every agent is refused, and the cap is never overshot.
func TestFitEightAgentsTwoReplicas(t *testing.T) {
	up := startAgentUpstream(t, 8*time.Millisecond)
	limit := money.USD(20)
	const key = "service/recommendation/daily"
	gws := startReplicas(t, 2, up.srv.URL, fitPolicy(),
		"CLADE_GRANT_WINDOW", "") // empty is unset: grants as shipped
	params := agentParams()

	var (
		mu          sync.Mutex
		spent       money.Nanos // by turns that ended, as the agents priced them
		firstAt     money.Nanos = -1
		turns       int
		fitted      int
		lastRefusal *anthropic.Error
	)
	var wg sync.WaitGroup
	for a := range 8 {
		c := anthropic.NewClient(option.WithBaseURL(gws[a%2].URL), option.WithAPIKey(testutil.CanaryToken))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				r := agentTurn(t, c, params)
				mu.Lock()
				if r.refusal != nil {
					if firstAt < 0 {
						firstAt = spent
					}
					lastRefusal = r.refusal
					mu.Unlock()
					return
				}
				spent += r.cost
				turns++
				if r.fitted {
					fitted++
				}
				mu.Unlock()
				if t.Failed() {
					return
				}
			}
			t.Error("an agent was never refused")
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	final := waitLevel(t, gws[0].AdminURL, key, spent)
	firstPct := 100 * float64(firstAt) / float64(limit)
	finalPct := 100 * float64(final.spent) / float64(limit)
	var counts float64
	for _, gw := range gws {
		if v, ok := value(scrape(t, gw.AdminURL), "clade_gateway_count_tokens_calls_total", map[string]string{"result": "ok"}); ok {
			counts += v
		}
	}
	t.Logf("8 agents, 2 replicas: %d turns (%d fitted, %d forwarded lowered), first 402 at %s (%.2f%%), all refused at %s (%.2f%%) of %s; count_tokens calls %.0f",
		turns, fitted, up.lowered.Load(), firstAt, firstPct, final.spent, finalPct, limit, counts)
	if firstPct < 95 {
		t.Errorf("first 402 at %.2f%% of the cap, want after 95%%", firstPct)
	}
	if finalPct < 98 || final.spent > limit {
		t.Errorf("every agent refused at %.2f%% (%s), want at least 98%% and never above the cap", finalPct, final.spent)
	}
	if int64(fitted) != up.lowered.Load() {
		t.Errorf("%d turns carried clade-max-tokens-fitted, %d were forwarded lowered", fitted, up.lowered.Load())
	}
	checkRefusal(t, lastRefusal)
	for i, gw := range gws {
		overshootZero(t, "replica "+strconv.Itoa(i), gw.AdminURL)
	}
}
