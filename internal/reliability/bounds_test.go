package reliability

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// Rows 9a-9d: requests whose bill their body does not bound, against a
// fake upstream that bills what the API would. The figure of each row is
// what the cap held against: refusals before any upstream call, and the
// final spend against the cap and against ground truth.

// haikuIn and haikuOut are Claude Haiku 4.5's rates in nano-USD per token.
const haikuIn, haikuOut = 1_000, 5_000

// boundsGateway starts a gateway on Redis with a total cap of limit USD
// and the recommendation service restricted to Sonnet and Haiku;
// unknownTools is the policy's unknown_tools ("" for the default).
func boundsGateway(t *testing.T, upstream, limit, unknownTools string) *testutil.App {
	t.Helper()
	rd := startRedis(t)
	p := policySpec{Limit: limit}.policy()
	p.UnknownTools = unknownTools
	p.Service("recommendation").Models = []string{"claude-sonnet-*", "claude-haiku-*"}
	return testutil.StartApp(t, policyEnv(t, upstream, p, rd.URL(), nil))
}

func upstreamPosts(f *fakeupstream.Server) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Method == http.MethodPost && r.Path == "/v1/messages" {
			n++
		}
	}
	return n
}

// haikuEstimate is the admission estimate of a Haiku 4.5 body without
// cache_control: its prompt is priced at the input rate.
func haikuEstimate(t *testing.T, body string, maxTokens int64) money.Nanos {
	t.Helper()
	tb, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	n, err := tb.Estimate(pricing.Request{Model: "claude-haiku-4-5", PromptBytes: int64(len(body)), MaxTokens: maxTokens, Cache: pricing.CacheNone}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReliabilityUnboundedContent(t *testing.T) {
	r := newRow(t, "9a. Unbounded content (media and files by URL, file id, base64, container upload)")
	pointed := []struct {
		blocks string
		billed int64
	}{
		{`{"type":"image","source":{"type":"url","url":"https://example.invalid/a.png"}}`, 1_600},
		{`{"type":"image","source":{"type":"file","file_id":"file_011A"}}`, 1_600},
		{`{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgoAAAANSUhEUgAAH0AAAB9AAQAAAAA="}}`, 1_600},
		{`{"type":"document","source":{"type":"url","url":"https://example.invalid/r.pdf"}}`, 180_000},
		{`{"type":"document","source":{"type":"file","file_id":"file_011B"}}`, 180_000},
		{`{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0xLjQK"}}`, 180_000},
		{`{"type":"container_upload","file_id":"file_011C"}`, 150_000},
	}
	f, up := startUpstream(t)
	f.Behave = func(req *http.Request, _ string, _ bool) fakeupstream.Behavior {
		b, _ := io.ReadAll(req.Body)
		for _, p := range pointed {
			if strings.Contains(string(b), p.blocks) {
				return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: p.billed, OutputTokens: 1000}}
			}
		}
		return fakeupstream.Behavior{Status: 400}
	}
	const capUSD = "1.50"
	limit, _ := money.Parse(capUSD)
	gw := boundsGateway(t, up.URL, capUSD, "")
	c := newClient(t, 10*time.Second)
	var admitted, refused, other int
	for round := 0; round < 4; round++ {
		for _, p := range pointed {
			body := `{"model":"claude-haiku-4-5","max_tokens":1000,"inference_geo":"global","messages":[{"role":"user","content":[` + p.blocks + `]}]}`
			x := send(c, gw.URL, testutil.CanaryToken, body, nil)
			switch x.status {
			case 200:
				admitted++
			case http.StatusPaymentRequired:
				refused++
			default:
				other++
				t.Errorf("status %d %s", x.status, x.body)
			}
			if lv, ok := waitBudget(t, gw.AdminURL, 10*time.Second, func(l budgetLevel) bool { return l.Reserved == 0 }); !ok || lv.Spent > limit {
				t.Fatalf("spent %s reserved %s, cap %s", lv.Spent, lv.Reserved, limit)
			}
		}
	}
	lv, _ := serviceBudget(gw.AdminURL)
	recs := spendRecords(t, gw.Spend.String())
	tr := f.Truth()
	truth := money.Nanos(tr["input"]*haikuIn + tr["output"]*haikuOut)
	r.Load = fmt.Sprintf("%d requests, 7 kinds of pointed-at content; %d admitted, %d refused (402) before the upstream", admitted+refused+other, admitted, refused)
	r.Faults = fmt.Sprintf("upstream bills up to 180,000 input tokens a request; cap $%s, final spend $%s", capUSD, lv.Spent)
	r.Unmetered = fmt.Sprint(upstreamPosts(f) - len(recs))
	r.Drift = nanos(lv.Spent - truth)
	r.Double = fmt.Sprint(doubleCharges(recs))
	r.Leaks = fmt.Sprint(leaks(gw.Logs.String(), gw.Spend.String(), scrape(t, gw.AdminURL)))
	if lv.Spent > limit || lv.Spent != truth || upstreamPosts(f) != admitted || refused == 0 {
		t.Errorf("spent %s (truth %s, cap %s), upstream %d, admitted %d, refused %d", lv.Spent, truth, limit, upstreamPosts(f), admitted, refused)
	}
}

func TestReliabilityHiddenModels(t *testing.T) {
	r := newRow(t, "9b. Hidden models (server-side fallbacks, advisor tool)")
	f, up := startUpstream(t)
	f.Behave = func(*http.Request, string, bool) fakeupstream.Behavior {
		return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 1000, OutputTokens: 1000, Iterations: []fakeupstream.Iteration{
			{Type: "message", Model: "claude-haiku-4-5", InputTokens: 500},
			{Type: "fallback_message", Model: "claude-sonnet-4-6", InputTokens: 500, OutputTokens: 1000},
		}}}
	}
	gw := boundsGateway(t, up.URL, "1000", "")
	c := newClient(t, 10*time.Second)
	base := `{"model":"claude-haiku-4-5","max_tokens":1000,"inference_geo":"global","messages":[{"role":"user","content":"hi"}]`
	refusals := []string{
		base + `,"fallbacks":[{"model":"claude-opus-4-6"}]}`,
		base + `,"fallbacks":[{"model":"claude-sonnet-4-6"},{"model":"claude-opus-4-1"}]}`,
		base + `,"tools":[{"type":"advisor_20260301","name":"advisor","model":"claude-opus-4-6","max_uses":1,"max_tokens":500}]}`,
		base + `,"tools":[{"type":"advisor_20260301","name":"advisor","model":"claude-sonnet-4-6","max_tokens":500}]}`,
	}
	refused := 0
	for _, b := range refusals {
		if x := send(c, gw.URL, testutil.CanaryToken, b, nil); x.status/100 == 4 {
			refused++
		} else {
			t.Errorf("%s: %d %s, want a refusal", b, x.status, x.body)
		}
	}
	forwardedRefusals := upstreamPosts(f)
	const fallbacks = 5
	for i := 0; i < fallbacks; i++ {
		if x := send(c, gw.URL, testutil.CanaryToken, base+`,"fallbacks":[{"model":"claude-sonnet-4-6"}]}`, nil); x.status != 200 {
			t.Fatalf("fallback request: %d %s", x.status, x.body)
		}
	}
	per := money.Nanos(500*haikuIn + 500*3_000 + 1000*15_000) // each iteration at its own model
	lv, ok := waitBudget(t, gw.AdminURL, 10*time.Second, func(l budgetLevel) bool { return l.Reserved == 0 && l.Spent == fallbacks*per })
	recs := spendRecords(t, gw.Spend.String())
	r.Load = fmt.Sprintf("%d requests naming models outside the allowlist or without a bound, %d with an allowed fallback", len(refusals), fallbacks)
	r.Faults = fmt.Sprintf("%d/%d refused before the upstream (%d forwarded); fallback billed per iteration: $%s each (at the top-level model: $%s)",
		refused, len(refusals), forwardedRefusals, per, money.Nanos(1000*haikuIn+1000*haikuOut))
	r.Unmetered = fmt.Sprint(upstreamPosts(f) - len(recs))
	r.Drift = nanos(lv.Spent - fallbacks*per)
	r.Double = fmt.Sprint(doubleCharges(recs))
	r.Leaks = fmt.Sprint(leaks(gw.Logs.String(), gw.Spend.String(), scrape(t, gw.AdminURL)))
	if !ok || forwardedRefusals != 0 || refused != len(refusals) {
		t.Errorf("spent %s want %s; %d refusals forwarded", lv.Spent, fallbacks*per, forwardedRefusals)
	}
}

func TestReliabilityUnknownTools(t *testing.T) {
	r := newRow(t, "9c. Unknown tool types (unknown_tools: reject, then allow)")
	f, up := startUpstream(t)
	c := newClient(t, 10*time.Second)
	body := `{"model":"claude-haiku-4-5","max_tokens":100,"inference_geo":"global","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"%s","name":"t"}]}`
	unknown := []string{"web_search_20271231", "web_fetch_20271231", "code_execution_20271231", "computer_use_2030", "video_generation_20270101"}
	reject := boundsGateway(t, up.URL, "1000", "")
	rejected := 0
	for _, u := range unknown {
		if x := send(c, reject.URL, testutil.CanaryToken, fmt.Sprintf(body, u), nil); x.status == 400 && strings.Contains(x.body, "not known to the gateway") {
			rejected++
		} else {
			t.Errorf("%s: %d %s, want 400", u, x.status, x.body)
		}
	}
	// allow: the $0.50 server tool allowance is in every hold, so a cap of
	// $0.40 admits none and a cap of $1.20 admits two at once at most.
	allow := boundsGateway(t, up.URL, "0.40", "allow")
	capped := 0
	for _, u := range unknown {
		if x := send(c, allow.URL, testutil.CanaryToken, fmt.Sprintf(body, u), nil); x.status == http.StatusPaymentRequired {
			capped++
		} else {
			t.Errorf("allow, $0.40 cap, %s: %d %s, want 402", u, x.status, x.body)
		}
	}
	forwarded := upstreamPosts(f)
	allowed := boundsGateway(t, up.URL, "5", "allow")
	for _, u := range unknown {
		if x := send(c, allowed.URL, testutil.CanaryToken, fmt.Sprintf(body, u), nil); x.status != 200 {
			t.Errorf("allow, $5 cap, %s: %d %s, want 200", u, x.status, x.body)
		}
	}
	lv, ok := waitBudget(t, allowed.AdminURL, 10*time.Second, func(l budgetLevel) bool { return l.Reserved == 0 && l.Spent > 0 })
	truth := money.Nanos(f.Truth()["input"]*haikuIn + f.Truth()["output"]*haikuOut)
	recs := spendRecords(t, allowed.Spend.String())
	r.Load = fmt.Sprintf("%d unknown tool types under reject, allow with a $0.40 cap, allow with a $5 cap", len(unknown))
	r.Faults = fmt.Sprintf("reject: %d/%d refused (400); allow under the $0.50 allowance: %d/%d refused (402); %d forwarded before allow with room",
		rejected, len(unknown), capped, len(unknown), forwarded)
	r.Unmetered = fmt.Sprint(upstreamPosts(f) - len(recs))
	r.Drift = nanos(lv.Spent - truth)
	r.Double = fmt.Sprint(doubleCharges(recs))
	r.Leaks = fmt.Sprint(leaks(reject.Logs.String(), allow.Logs.String(), allowed.Logs.String(), allowed.Spend.String()))
	if !ok || forwarded != 0 || lv.Spent != truth {
		t.Errorf("forwarded %d before allow with room; spent %s truth %s", forwarded, lv.Spent, truth)
	}
}

func TestReliabilityImpossibleUsage(t *testing.T) {
	r := newRow(t, "9d. Impossible usage (negative, non-numeric, missing, over max_tokens, over the context window, searches without a tool)")
	cases := map[string]fakeupstream.Behavior{
		"negative":          {Usage: fakeupstream.Usage{OutputTokens: 10}, UsageOverride: map[string]any{"input_tokens": -500000}},
		"non-numeric":       {Usage: fakeupstream.Usage{InputTokens: 10}, UsageOverride: map[string]any{"output_tokens": "900"}},
		"fractional":        {Usage: fakeupstream.Usage{OutputTokens: 10}, UsageOverride: map[string]any{"input_tokens": 0.5}},
		"missing":           {Usage: fakeupstream.Usage{InputTokens: 10}, UsageOverride: map[string]any{"output_tokens": nil}},
		"over max_tokens":   {Usage: fakeupstream.Usage{InputTokens: 10, OutputTokens: 900_000_000}, Impossible: true},
		"over the context":  {Usage: fakeupstream.Usage{InputTokens: 5_000_000_000, OutputTokens: 10}},
		"searches, no tool": {Usage: fakeupstream.Usage{InputTokens: 10, OutputTokens: 10, WebSearch: 1_000_000}},
	}
	f, up := startUpstream(t)
	f.Behave = func(req *http.Request, _ string, _ bool) fakeupstream.Behavior {
		return cases[req.Header.Get("X-Test-Case")]
	}
	gw := boundsGateway(t, up.URL, "1000", "")
	c := newClient(t, 10*time.Second)
	var want money.Nanos
	n := 0
	for _, stream := range []bool{false, true} {
		body := fmt.Sprintf(`{"model":"claude-haiku-4-5","max_tokens":1000,"stream":%t,"inference_geo":"global","messages":[{"role":"user","content":"hi"}]}`, stream)
		for name := range cases {
			x := send(c, gw.URL, testutil.CanaryToken, body, map[string]string{"X-Test-Case": name})
			if x.status != 200 {
				t.Fatalf("%s: %d %s", name, x.status, x.body)
			}
			want += haikuEstimate(t, body, 1000)
			n++
		}
	}
	lv, ok := waitBudget(t, gw.AdminURL, 10*time.Second, func(l budgetLevel) bool { return l.Reserved == 0 && l.Spent == want })
	recs := spendRecords(t, gw.Spend.String())
	byHold := 0
	for _, rec := range recs {
		if rec.ChargedBy == "impossible_usage" {
			byHold++
		}
	}
	counted := metricSum(scrape(t, gw.AdminURL), "clade_gateway_impossible_usage_total")
	r.Load = fmt.Sprintf("%d responses (%d kinds, JSON and SSE)", n, len(cases))
	r.Faults = fmt.Sprintf("%d/%d charged the hold's estimate (total $%s), %.0f counted in clade_gateway_impossible_usage_total", byHold, n, want, counted)
	r.Unmetered = fmt.Sprint(upstreamPosts(f) - len(recs))
	r.Drift = nanos(lv.Spent - want)
	r.Double = fmt.Sprint(doubleCharges(recs))
	r.Leaks = fmt.Sprint(leaks(gw.Logs.String(), gw.Spend.String()))
	if !ok || byHold != n || int(counted) != n || !strings.Contains(gw.Logs.String(), "impossible usage from the upstream") {
		t.Errorf("spent %s want %s; %d of %d charged by hold; metric %v", lv.Spent, want, byHold, n, counted)
	}
}
