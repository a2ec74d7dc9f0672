package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// impossibleCases are usages the API cannot send for a Haiku 4.5 request
// with max_tokens 1000: each must be charged the hold's estimate, never
// its face value ($0 or absurd).
var impossibleCases = []struct {
	name, reason string
	b            fakeupstream.Behavior
}{
	{"negative input", "invalid_count", fakeupstream.Behavior{Usage: fakeupstream.Usage{OutputTokens: 10}, UsageOverride: map[string]any{"input_tokens": -500000}}},
	{"non-numeric output", "invalid_count", fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 10}, UsageOverride: map[string]any{"output_tokens": "900"}}},
	{"fractional input", "invalid_count", fakeupstream.Behavior{Usage: fakeupstream.Usage{OutputTokens: 10}, UsageOverride: map[string]any{"input_tokens": 12.5}}},
	{"missing output", "missing_count", fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 10}, UsageOverride: map[string]any{"output_tokens": nil}}},
	{"output over max_tokens", "over_max_tokens", fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 10, OutputTokens: 900_000_000}, Impossible: true}},
	{"input over the context window", "over_context_window", fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 5_000_000_000, OutputTokens: 10}}},
	{"web searches without a web search tool", "over_max_uses", fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 10, OutputTokens: 10, WebSearch: 1_000_000}}},
}

// impossibleBody has no cache_control: its hold prices the prompt at the
// input rate (pricing.CacheNone), in the global geography it names.
const impossibleBody = `{"model":"claude-haiku-4-5","max_tokens":1000,"inference_geo":"global","messages":[{"role":"user","content":"hi"}]}`

func TestImpossibleUsageIsChargedTheHold(t *testing.T) {
	f, up := startUpstream(t)
	f.Behave = func(r *http.Request, _ string, _ bool) fakeupstream.Behavior {
		for _, c := range impossibleCases {
			if r.Header.Get("x-test-case") == c.name {
				return c.b
			}
		}
		return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 10, OutputTokens: 10}}
	}
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("50"))))
	est := estimate(t, pricing.Request{Model: "claude-haiku-4-5", PromptBytes: int64(len(impossibleBody)), MaxTokens: 1000, Cache: pricing.CacheNone})
	n := 0
	for _, stream := range []bool{false, true} {
		body := impossibleBody
		if stream {
			body = strings.Replace(body, `"max_tokens"`, `"stream":true,"max_tokens"`, 1)
		}
		for _, c := range impossibleCases {
			before := settled(t, gw)
			if code, resp := postRaw(t, gw, body, map[string]string{"x-test-case": c.name}); code != 200 {
				t.Fatalf("%s: %d %s", c.name, code, resp)
			}
			n++
			waitSpend(t, gw, n)
			var want money.Nanos = est
			if stream {
				want = estimate(t, pricing.Request{Model: "claude-haiku-4-5", PromptBytes: int64(len(body)), MaxTokens: 1000, Cache: pricing.CacheNone})
			}
			if got := settled(t, gw) - before; got != want {
				t.Errorf("%s (stream %v): charged %s, want the hold's estimate %s", c.name, stream, got, want)
			}
		}
	}
	lines := strings.Split(strings.TrimSpace(gw.Spend.String()), "\n")
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["charged_by"] != "impossible_usage" {
			t.Errorf("spend record charged_by %v, want impossible_usage: %s", rec["charged_by"], line)
		}
	}
	_, metrics := get(t, gw.AdminURL+"/metrics", "")
	for _, c := range impossibleCases {
		series := `clade_gateway_impossible_usage_total{reason="` + c.reason + `"}`
		if v := metricValue(t, metrics, series); v < 2 {
			t.Errorf("%s = %v, want at least 2 (JSON and stream)", series, v)
		}
	}
	if !strings.Contains(gw.Logs.String(), "impossible usage from the upstream") {
		t.Error("no error log for impossible usage")
	}
}

func TestInterruptedStreamWithUnseenOutputChargesTheHold(t *testing.T) {
	f, up := startUpstream(t)
	f.Behave = func(r *http.Request, _ string, _ bool) fakeupstream.Behavior {
		b := fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 50, OutputTokens: 900}, CutAfterEvents: 4}
		switch r.Header.Get("x-test-case") {
		case "thinking":
			// A few summarised words stand for hundreds of billed tokens.
			b.Thinking = []string{"Let me", " think."}
		case "redacted":
			b.Redacted, b.CutAfterEvents = true, 3
		case "text":
			b.Text, b.CutAfterEvents = []string{"Hello", " there", "!"}, 4
		}
		return b
	}
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("50"))))
	body := `{"model":"claude-haiku-4-5","max_tokens":1000,"stream":true,"inference_geo":"global","messages":[{"role":"user","content":"hi"}]}`
	est := estimate(t, pricing.Request{Model: "claude-haiku-4-5", PromptBytes: int64(len(body)), MaxTokens: 1000, Cache: pricing.CacheNone})
	for i, c := range []string{"thinking", "redacted", "text"} {
		before := settled(t, gw)
		code, _ := postRaw(t, gw, body, map[string]string{"x-test-case": c})
		if code != 200 {
			t.Fatalf("%s: %d", c, code)
		}
		waitSpend(t, gw, i+1)
		got := settled(t, gw) - before
		switch c {
		case "text":
			// Text shows every token it bills: input as reported, output
			// bounded by the bytes streamed, far below the hold.
			if got <= 0 || got >= est {
				t.Errorf("text: charged %s, want between 0 and the hold %s", got, est)
			}
		default:
			if got != est {
				t.Errorf("%s: charged %s, want the hold's estimate %s", c, got, est)
			}
		}
	}
	// A cut stream whose message_start was impossible is not charged by it.
	before := settled(t, gw)
	f.Behave = func(*http.Request, string, bool) fakeupstream.Behavior {
		return fakeupstream.Behavior{Usage: fakeupstream.Usage{OutputTokens: 900}, CutAfterEvents: 4,
			UsageOverride: map[string]any{"input_tokens": -400000}}
	}
	if code, _ := postRaw(t, gw, body, nil); code != 200 {
		t.Fatalf("negative start: %d", code)
	}
	waitSpend(t, gw, 4)
	if got := settled(t, gw) - before; got != est {
		t.Errorf("cut stream with a negative input count: charged %s, want the hold's estimate %s", got, est)
	}
	if !strings.Contains(gw.Spend.String(), `"charged_by":"interrupted_stream_unseen_output"`) {
		t.Errorf("spend log lacks interrupted_stream_unseen_output:\n%s", gw.Spend.String())
	}
}

func TestTierAndResidencyPricedAsBilled(t *testing.T) {
	f, up := startUpstream(t)
	f.Behave = func(r *http.Request, _ string, _ bool) fakeupstream.Behavior {
		u := fakeupstream.Usage{InputTokens: 1000, OutputTokens: 100}
		switch r.Header.Get("x-test-case") {
		case "priority":
			u.ServiceTier = "priority"
		case "us":
			u.InferenceGeo = "us"
		}
		return fakeupstream.Behavior{Usage: u}
	}
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("50"))))
	noGeo := `{"model":"claude-sonnet-4-6","max_tokens":1000,"messages":[{"role":"user","content":"hi"}]}`

	// Priority tier has no list price: never charged at standard rates.
	before := settled(t, gw)
	if code, resp := postRaw(t, gw, noGeo, map[string]string{"x-test-case": "priority"}); code != 200 {
		t.Fatalf("priority: %d %s", code, resp)
	}
	standard := money.Nanos(1000*3_000 + 100*15_000)
	// The hold: no cache_control (the input rate), and residency 1.1x as
	// the request names no inference_geo.
	est := estimate(t, pricing.Request{Model: "claude-sonnet-4-6", PromptBytes: int64(len(noGeo)), MaxTokens: 1000, InferenceGeoUS: true, Cache: pricing.CacheNone})
	if got := settled(t, gw) - before; got != est || got <= standard {
		t.Errorf("priority: charged %s, want the hold's estimate %s (standard would be %s)", got, est, standard)
	}

	// No inference_geo: the workspace default may be "us", and the usage
	// says it was. The bill is 1.1x and the hold covered it.
	before = settled(t, gw)
	if code, resp := postRaw(t, gw, noGeo, map[string]string{"x-test-case": "us"}); code != 200 {
		t.Fatalf("us: %d %s", code, resp)
	}
	if got, want := settled(t, gw)-before, standard*11/10; got != want {
		t.Errorf("us: charged %s, want %s", got, want)
	}
	if est <= estimate(t, pricing.Request{Model: "claude-sonnet-4-6", PromptBytes: int64(len(noGeo)), MaxTokens: 1000, Cache: pricing.CacheNone}) {
		t.Error("the hold of a request without inference_geo is not above the global one")
	}
}
