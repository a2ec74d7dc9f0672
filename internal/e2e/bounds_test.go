package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// Every billed token must be bounded before a request is forwarded. These
// tests send, through the real gateway, each kind of request whose bill
// its body does not bound, with the fake upstream billing what the API
// would, and check that the gateway either refuses before any upstream
// call or ends with a spend that never exceeds the cap.

// postRaw sends body to /v1/messages as the canary service.
func postRaw(t *testing.T, gw *testutil.App, body string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, gw.URL+"/v1/messages", bytes.NewBufferString(body))
	req.Header.Set("x-api-key", testutil.CanaryToken)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("content-type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// upstreamMessages counts Messages requests that reached the upstream.
func upstreamMessages(f *fakeupstream.Server) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Method == http.MethodPost && r.Path == "/v1/messages" {
			n++
		}
	}
	return n
}

// serviceSpent returns the recommendation service's daily spend and holds.
func serviceSpent(t *testing.T, gw *testutil.App) (spent, reserved money.Nanos) {
	t.Helper()
	code, body := get(t, gw.AdminURL+"/admin/budgets", testutil.AdminToken)
	if code != 200 {
		t.Fatalf("admin budgets: %d %s", code, body)
	}
	var out struct {
		Budgets []struct {
			Scope, Name, ID string
			Spent           string `json:"spent_usd"`
			Reserved        string `json:"reserved_usd"`
		} `json:"budgets"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	for _, b := range out.Budgets {
		if b.Scope == "service" && b.Name == "recommendation" && b.ID == "daily" {
			s, err1 := money.Parse(b.Spent)
			r, err2 := money.Parse(b.Reserved)
			if err1 != nil || err2 != nil {
				t.Fatalf("budget amounts %q %q", b.Spent, b.Reserved)
			}
			return s, r
		}
	}
	t.Fatalf("no daily budget for recommendation: %s", body)
	return 0, 0
}

// settled waits until no hold is left, so spend is final.
func settled(t *testing.T, gw *testutil.App) money.Nanos {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, r := serviceSpent(t, gw)
		if r == 0 {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("holds still live: spent %s reserved %s", s, r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func estimate(t *testing.T, r pricing.Request) money.Nanos {
	t.Helper()
	tb, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	n, err := tb.Estimate(r, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// contentCases are requests whose content the body only points at, each
// with what the API bills for it (the fake bills the same).
var contentCases = []struct {
	name, blocks string
	billed       int64 // input tokens the API bills
}{
	// An image is billed by its pixels, up to about 1,600 tokens; a PDF
	// per page as text plus an image of the page, about 3,000 a page.
	{"image by URL", `{"type":"image","source":{"type":"url","url":"https://example.invalid/cat.png"}}`, 1_600},
	{"image by file id", `{"type":"image","source":{"type":"file","file_id":"file_011CNha8iCJcU1wXNR6q4V8w"}}`, 1_600},
	// A 1-pixel-wide PNG a few bytes long can declare 8000x8000 pixels.
	{"tiny compressible base64 image", `{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgoAAAANSUhEUgAAH0AAAB9AAQAAAAA="}}`, 1_600},
	{"PDF by URL", `{"type":"document","source":{"type":"url","url":"https://example.invalid/report.pdf"}}`, 180_000},
	{"PDF by file id", `{"type":"document","source":{"type":"file","file_id":"file_011CPdf"}}`, 180_000},
	{"compressible base64 PDF", `{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0xLjQK"}}`, 180_000},
	{"PDF in a tool result", `{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"document","source":{"type":"url","url":"https://example.invalid/r.pdf"}}]}`, 180_000},
	{"container upload", `{"type":"container_upload","file_id":"file_011CData"}`, 150_000},
	{"unknown block type", `{"type":"video","source":{"type":"url","url":"https://example.invalid/v.mp4"}}`, 190_000},
}

func contentBody(blocks string) string {
	return `{"model":"claude-haiku-4-5","max_tokens":1000,"inference_geo":"global","messages":[{"role":"user","content":[` +
		blocks + `,{"type":"text","text":"Summarise."}]}]}`
}

// billContent answers as the API would for the content cases.
func billContent(r *http.Request, _ string, _ bool) fakeupstream.Behavior {
	body, _ := io.ReadAll(r.Body)
	for _, c := range contentCases {
		if strings.Contains(string(body), c.blocks) {
			return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: c.billed, OutputTokens: 1000}}
		}
	}
	return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 1200, OutputTokens: 300}}
}

func TestUnboundedContentRefusedBelowItsBound(t *testing.T) {
	f, up := startUpstream(t)
	f.Behave = billContent
	// $0.15 is far above what the body's bytes suggest (a few hundred
	// tokens), and below the context-window bound of Haiku 4.5: 200,000
	// tokens at the input rate, the dearest these bodies can incur as no
	// cache_control appears ($0.20), in the global geography they name.
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("0.15"))))
	for _, c := range contentCases {
		code, body := postRaw(t, gw, contentBody(c.blocks), nil)
		if code != http.StatusPaymentRequired || !strings.Contains(body, "budget_exceeded") {
			t.Errorf("%s: %d %s, want 402 budget_exceeded", c.name, code, body)
		}
	}
	if n := upstreamMessages(f); n != 0 {
		t.Errorf("%d requests reached the upstream, want 0", n)
	}
	// Text alone is bounded by its bytes and still fits.
	if code, body := postRaw(t, gw, contentBody(`{"type":"text","text":"hello"}`), nil); code != 200 {
		t.Errorf("plain text: %d %s", code, body)
	}
}

func TestUnboundedContentSpendNeverExceedsTheCap(t *testing.T) {
	f, up := startUpstream(t)
	f.Behave = billContent
	const capUSD = "1.50"
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily(capUSD))))
	limit, _ := money.Parse(capUSD)
	var admitted, refused int
	for round := 0; round < 4; round++ {
		for _, c := range contentCases {
			code, body := postRaw(t, gw, contentBody(c.blocks), nil)
			switch code {
			case 200:
				admitted++
			case http.StatusPaymentRequired:
				refused++
			default:
				t.Fatalf("%s: %d %s", c.name, code, body)
			}
			if spent := settled(t, gw); spent > limit {
				t.Fatalf("after %s: spent %s over the cap %s", c.name, spent, limit)
			}
		}
	}
	spent := settled(t, gw)
	t.Logf("unbounded content: cap $%s, admitted %d, refused %d, final spend $%s", capUSD, admitted, refused, spent)
	if admitted < 2 || refused == 0 || spent > limit {
		t.Errorf("admitted %d refused %d spent %s (cap %s)", admitted, refused, spent, limit)
	}
}

func TestHiddenModels(t *testing.T) {
	f, up := startUpstream(t)
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("50"))))
	base := `{"model":"claude-haiku-4-5","max_tokens":1000,"inference_geo":"global","messages":[{"role":"user","content":"hi"}]`
	refusals := []struct{ name, body, want string }{
		{"fallback outside the allowlist", base + `,"fallbacks":[{"model":"claude-opus-4-6"}]}`, `model \"claude-opus-4-6\" is not allowed for service`},
		{"second fallback outside the allowlist", base + `,"fallbacks":[{"model":"claude-sonnet-4-6"},{"model":"claude-opus-4-1"}]}`, `model \"claude-opus-4-1\" is not allowed for service`},
		{"advisor outside the allowlist", base + `,"tools":[{"type":"advisor_20260301","name":"advisor","model":"claude-opus-4-6","max_uses":1,"max_tokens":500}]}`, `model \"claude-opus-4-6\" is not allowed for service`},
		{"advisor without max_uses", base + `,"tools":[{"type":"advisor_20260301","name":"advisor","model":"claude-sonnet-4-6","max_tokens":500}]}`, `max_uses is required`},
		{"fallback without a price", base + `,"fallbacks":[{"model":"claude-sonnet-9-9"}]}`, `has no price`},
	}
	for _, r := range refusals {
		code, body := postRaw(t, gw, r.body, nil)
		if code/100 != 4 || !strings.Contains(body, r.want) {
			t.Errorf("%s: %d %s, want a refusal containing %q", r.name, code, body, r.want)
		}
	}
	if n := upstreamMessages(f); n != 0 {
		t.Errorf("%d requests reached the upstream, want 0", n)
	}

	// A fallback the allowlist permits: the primary is refused after a
	// little input, the fallback answers. The response's top-level model
	// is the primary; usage.iterations says who did what.
	f.Behave = func(*http.Request, string, bool) fakeupstream.Behavior {
		return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 1000, OutputTokens: 1000, Iterations: []fakeupstream.Iteration{
			{Type: "message", Model: "claude-haiku-4-5", InputTokens: 500},
			{Type: "fallback_message", Model: "claude-sonnet-4-6", InputTokens: 500, OutputTokens: 1000},
		}}}
	}
	before, _ := serviceSpent(t, gw)
	if code, body := postRaw(t, gw, base+`,"fallbacks":[{"model":"claude-sonnet-4-6"}]}`, nil); code != 200 {
		t.Fatalf("fallback request: %d %s", code, body)
	}
	// Haiku 4.5: 500 × $1/MTok; Sonnet 4.6: 500 × $3 + 1,000 × $15.
	// Priced at the top-level model it would be 1,000 × $1 + 1,000 × $5.
	want := money.Nanos(500*1_000 + 500*3_000 + 1_000*15_000)
	if got := settled(t, gw) - before; got != want {
		t.Errorf("fallback request charged %s, want %s (each iteration at its own model)", got, want)
	}
}

func TestFallbackModelsAreInTheHold(t *testing.T) {
	f, up := startUpstream(t)
	body := `{"model":"claude-haiku-4-5","max_tokens":1000,"inference_geo":"global","messages":[{"role":"user","content":"hi"}]`
	withFallback := body + `,"fallbacks":[{"model":"claude-sonnet-4-6","max_tokens":4000}]}`
	// No cache_control: each attempt's prompt is priced at its input rate.
	primary := estimate(t, pricing.Request{Model: "claude-haiku-4-5", PromptBytes: int64(len(withFallback)), MaxTokens: 1000, Cache: pricing.CacheNone})
	fallback := estimate(t, pricing.Request{Model: "claude-sonnet-4-6", PromptBytes: int64(len(withFallback)), MaxTokens: 4000, Cache: pricing.CacheNone})
	// The cap fits the primary alone, not primary and fallback.
	limit := primary + fallback/2
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily(limit.String()))))
	if code, resp := postRaw(t, gw, withFallback, nil); code != http.StatusPaymentRequired {
		t.Errorf("with a fallback: %d %s, want 402", code, resp)
	}
	if n := upstreamMessages(f); n != 0 {
		t.Errorf("%d requests reached the upstream, want 0", n)
	}
	if code, resp := postRaw(t, gw, body+`}`, nil); code != 200 {
		t.Errorf("without the fallback: %d %s", code, resp)
	}
}

func TestUnknownToolTypes(t *testing.T) {
	body := `{"model":"claude-haiku-4-5","max_tokens":100,"inference_geo":"global","messages":[{"role":"user","content":"hi"}],` +
		`"tools":[{"type":"web_search_20271231","name":"web_search"}]}`
	t.Run("reject by default", func(t *testing.T) {
		f, up := startUpstream(t)
		gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("50"))))
		code, resp := postRaw(t, gw, body, nil)
		if code != 400 || !strings.Contains(resp, `tool type \"web_search_20271231\" is not known`) {
			t.Errorf("%d %s, want 400 naming the tool type", code, resp)
		}
		if n := upstreamMessages(f); n != 0 {
			t.Errorf("%d requests reached the upstream, want 0", n)
		}
	})
	t.Run("allow adds the allowance", func(t *testing.T) {
		f, up := startUpstream(t)
		// A cap below the $0.50 default server tool allowance: allowed,
		// the unknown tool is still refused, by the budget.
		allowing := func(limitUSD string) testpolicy.Policy {
			p := basePolicy(testpolicy.Daily(limitUSD))
			p.UnknownTools = "allow"
			return p
		}
		gw := testutil.StartApp(t, env(t, up.URL, allowing("0.40")))
		if code, resp := postRaw(t, gw, body, nil); code != http.StatusPaymentRequired {
			t.Errorf("under a $0.40 cap: %d %s, want 402", code, resp)
		}
		if n := upstreamMessages(f); n != 0 {
			t.Errorf("%d requests reached the upstream, want 0", n)
		}
		gw2 := testutil.StartApp(t, env(t, up.URL, allowing("5")))
		if code, resp := postRaw(t, gw2, body, nil); code != 200 {
			t.Errorf("under a $5 cap: %d %s, want 200", code, resp)
		}
	})
}

func TestStrictParsingRefusesBeforeAnyHold(t *testing.T) {
	f, up := startUpstream(t)
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("50"))))
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	bodies := map[string]string{
		"duplicate model":        `{"model":"claude-haiku-4-5","model":"claude-opus-4-1","max_tokens":16,` + msgs + `}`,
		"model case variant":     `{"model":"claude-haiku-4-5","MODEL":"claude-opus-4-1","max_tokens":16,` + msgs + `}`,
		"escaped max_tokens":     `{"model":"claude-haiku-4-5","max_tokens":16,"max\u005ftokens":100000,` + msgs + `}`,
		"max_tokens as exponent": `{"model":"claude-haiku-4-5","max_tokens":1e5,` + msgs + `}`,
		"max_tokens as string":   `{"model":"claude-haiku-4-5","max_tokens":"100000",` + msgs + `}`,
		"duplicate in a message": `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi","content":[{"type":"image","source":{"type":"url","url":"https://x.invalid/a.png"}}]}]}`,
	}
	for name, b := range bodies {
		code, resp := postRaw(t, gw, b, nil)
		if code != 400 || !strings.Contains(resp, "invalid_request_error") {
			t.Errorf("%s: %d %s, want 400", name, code, resp)
		}
	}
	if n := upstreamMessages(f); n != 0 {
		t.Errorf("%d requests reached the upstream, want 0", n)
	}
	if s, r := serviceSpent(t, gw); s != 0 || r != 0 {
		t.Errorf("spent %s reserved %s after refusals", s, r)
	}
}

// serverToolCases are requests that can loop server-side: each adds the
// operator's server tool allowance ($0.50 by default) to its hold.
var serverToolCases = map[string]string{
	"web search":     `"tools":[{"type":"web_search_20260318","name":"web_search","max_uses":3}]`,
	"web fetch":      `"tools":[{"type":"web_fetch_20260318","name":"web_fetch","max_uses":2}]`,
	"code execution": `"tools":[{"type":"code_execution_20260521","name":"code_execution"}]`,
	"tool search":    `"tools":[{"type":"tool_search_tool_regex_20251119","name":"tool_search"}]`,
	"MCP":            `"mcp_servers":[{"type":"url","url":"https://mcp.example.invalid/sse","name":"docs"}],"tools":[{"type":"mcp_toolset","mcp_server_name":"docs"}]`,
	"compaction":     `"context_management":{"edits":[{"type":"compact_20260112"}]}`,
	"skills":         `"container":{"skills":[{"type":"anthropic","skill_id":"pdf"}]}`,
}

func TestServerLoopsHoldTheAllowance(t *testing.T) {
	f, up := startUpstream(t)
	// A server-side loop: results come back as input of the next
	// iteration, so input grows far past the body; a web search loop also
	// bills $0.01 a search.
	f.Behave = func(r *http.Request, _ string, _ bool) fakeupstream.Behavior {
		b, _ := io.ReadAll(r.Body)
		u := fakeupstream.Usage{InputTokens: 40_000, OutputTokens: 800}
		if strings.Contains(string(b), "web_search_") {
			u.WebSearch = 3
		}
		return fakeupstream.Behavior{Usage: u}
	}
	body := func(extra string) string {
		return `{"model":"claude-haiku-4-5","max_tokens":1000,"inference_geo":"global","messages":[{"role":"user","content":"look it up"}],` + extra + `}`
	}
	small := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("0.30"))))
	for name, extra := range serverToolCases {
		if code, resp := postRaw(t, small, body(extra), nil); code != http.StatusPaymentRequired {
			t.Errorf("%s under a $0.30 cap: %d %s, want 402 (the allowance is in the hold)", name, code, resp)
		}
	}
	if n := upstreamMessages(f); n != 0 {
		t.Errorf("%d requests reached the upstream, want 0", n)
	}
	const capUSD = "2"
	limit, _ := money.Parse(capUSD)
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily(capUSD))))
	admitted, searches := 0, 0
	for round := 0; round < 3; round++ {
		for name, extra := range serverToolCases {
			code, resp := postRaw(t, gw, body(extra), nil)
			switch code {
			case 200:
				admitted++
				if name == "web search" {
					searches++
				}
			case http.StatusPaymentRequired:
			default:
				t.Fatalf("%s: %d %s", name, code, resp)
			}
			if spent := settled(t, gw); spent > limit {
				t.Fatalf("after %s: spent %s over the cap %s", name, spent, limit)
			}
		}
	}
	// Each loop bills 40,000 × $1 + 800 × $5 per MTok, a search loop 3
	// searches × $0.01 more.
	per := money.Nanos(40_000*1_000 + 800*5_000)
	want := money.Nanos(admitted)*per + money.Nanos(searches)*3*10_000_000
	if spent := settled(t, gw); spent != want || admitted == 0 {
		t.Errorf("spent %s for %d admitted (%d searching), want %s", spent, admitted, searches, want)
	}
}
