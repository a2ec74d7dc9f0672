package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// recorded is a request Claude Code sent to a loopback fake upstream
// (testdata/claude-code), replayed through the gateway as it was sent.
type recorded struct {
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	Headers [][2]string `json:"headers"`
	Body    string      `json:"body"`
}

func loadRecorded(t *testing.T, name string) recorded {
	t.Helper()
	b, err := os.ReadFile("testdata/claude-code/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var r recorded
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// replay sends r through the gateway with token, after edit rewrites the
// body and headers, and returns the status and the response body (the
// SSE stream read to its end).
func replay(t *testing.T, gw *testutil.App, r recorded, token string, edit func(h http.Header, body string) string) (int, string) {
	t.Helper()
	h := http.Header{}
	for _, kv := range r.Headers {
		h.Add(kv[0], kv[1])
	}
	h.Set("X-Api-Key", token)
	body := r.Body
	if edit != nil {
		body = edit(h, body)
	}
	req, _ := http.NewRequest(r.Method, gw.URL+r.Path, strings.NewReader(body))
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(bufio.NewReader(resp.Body))
	return resp.StatusCode, string(out)
}

// asDeveloper makes a recorded request (with CLAUDE_CODE_EXTRA_METADATA's
// user "alice@example.com") come from dev in session.
func asDeveloper(dev, session string) func(h http.Header, body string) string {
	return func(h http.Header, body string) string {
		const recordedSession = "9692e3ab-80a2-4e77-aa07-a56779138e77"
		h.Set("X-Claude-Code-Session-Id", session)
		body = strings.Replace(body, `\"user\":\"alice@example.com\"`, `\"user\":\"`+dev+`\"`, 1)
		return strings.Replace(body, recordedSession, session, 1)
	}
}

// claudeCodePolicy is the policy of a team running Claude Code through one
// service token: caps per developer and per session inside the service's.
func claudeCodePolicy(serviceUSD, developerUSD, sessionUSD string) testpolicy.Policy {
	return testpolicy.Policy{
		Workspaces: []testpolicy.Workspace{{Name: "development", Keys: []testpolicy.Key{{Name: "dev", Env: "TEST_WORKSPACE_KEY"}}}},
		Teams:      []testpolicy.Team{{Name: "platform"}},
		Services: []testpolicy.Service{{
			Name: "claude-code", Team: "platform", Workspace: "development",
			Tokens:  []string{testutil.CanaryToken},
			Budgets: []testpolicy.Budget{testpolicy.Monthly(serviceUSD)},
			Principals: []testpolicy.Principal{
				{From: "claude_code.user", Budgets: []testpolicy.Budget{testpolicy.Daily(developerUSD)},
					Overrides: []testpolicy.Override{{Value: "carol@example.com", Budgets: []testpolicy.Budget{testpolicy.Daily("1")}}}},
				{From: "claude_code.session", Budgets: []testpolicy.Budget{testpolicy.Total(sessionUSD)}},
			},
		}},
		AdminTokens: []string{testutil.AdminToken},
	}
}

// bigUsage makes every response cost about $2.50 on claude-opus-5-5
// (100,000 output tokens), so caps of tens of dollars are reached in a
// handful of requests.
func bigUsage(f *fakeupstream.Server) {
	f.Behave = func(*http.Request, string, bool) fakeupstream.Behavior {
		return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 1000, OutputTokens: 100_000}}
	}
}

// untilRefused replays until the gateway refuses, and returns how many
// were admitted and the refusal.
func untilRefused(t *testing.T, gw *testutil.App, r recorded, edit func(http.Header, string) string) (int, string) {
	t.Helper()
	for i := 0; i < 50; i++ {
		code, body := replay(t, gw, r, testutil.CanaryToken, edit)
		switch code {
		case http.StatusOK:
			continue
		case http.StatusPaymentRequired:
			return i, body
		default:
			t.Fatalf("request %d: %d %s", i, code, body)
		}
	}
	t.Fatal("never refused")
	return 0, ""
}

func TestClaudeCodeDevelopersReachTheirOwnCaps(t *testing.T) {
	f, up := startUpstream(t)
	bigUsage(f)
	gw := testutil.StartApp(t, env(t, up.URL, claudeCodePolicy("40", "20", "1000")))
	rec := loadRecorded(t, "main-extra-metadata.json")

	aliceN, refusal := untilRefused(t, gw, rec, asDeveloper("alice@example.com", "11111111-1111-4111-8111-111111111111"))
	if aliceN < 2 {
		t.Fatalf("alice was admitted %d requests before her cap", aliceN)
	}
	for _, want := range []string{`"type":"billing_error"`, "developer alice@example.com has ", "the daily budget of $20 for service claude-code", "resets at 20"} {
		if !strings.Contains(refusal, want) {
			t.Errorf("refusal lacks %q: %s", want, refusal)
		}
	}
	// Bob shares the token but not Alice's cap.
	bobN, refusal := untilRefused(t, gw, rec, asDeveloper("bob@example.com", "22222222-2222-4222-8222-222222222222"))
	if bobN != aliceN || !strings.Contains(refusal, "developer bob@example.com has ") || !strings.Contains(refusal, "the daily budget of $20 for service claude-code") {
		t.Errorf("bob: %d admitted (alice %d), refusal %s", bobN, aliceN, refusal)
	}
	// Carol's override is $1: the estimate of one request is more.
	code, body := replay(t, gw, rec, testutil.CanaryToken, asDeveloper("carol@example.com", "44444444-4444-4444-8444-444444444444"))
	if code != http.StatusPaymentRequired || !strings.Contains(body, "developer carol@example.com has ") || !strings.Contains(body, "the daily budget of $1 for service claude-code") {
		t.Errorf("carol's override: %d %s", code, body)
	}
	// Dave has his own daily cap left, but the service's $40 is nearly spent.
	_, refusal = untilRefused(t, gw, rec, asDeveloper("dave@example.com", "33333333-3333-4333-8333-333333333333"))
	if !strings.Contains(refusal, `Service \"claude-code\"`) || !strings.Contains(refusal, `monthly budget \"monthly\" of $40`) {
		t.Errorf("dave was not refused by the service's cap: %s", refusal)
	}

	lv := principalLevels(t, gw.AdminURL, "claude-code")
	for _, dev := range []string{"alice@example.com", "bob@example.com", "dave@example.com"} {
		l, ok := lv["claude-code/claude_code.user/"+dev+"/daily"]
		if !ok || l.spent <= 0 || l.spent > l.limit || l.reserved != 0 {
			t.Errorf("%s daily: %+v (found %v)", dev, l, ok)
		}
	}
	svc := mustLevels(t, gw.AdminURL)["service/claude-code/monthly"]
	if svc.spent > svc.limit || svc.spent < 3*(svc.limit/4) {
		t.Errorf("service spent %s of %s", svc.spent, svc.limit)
	}
	// The spend log names the principals; metrics never do.
	waitSpend(t, gw, aliceN+bobN+1)
	if !strings.Contains(gw.Spend.String(), `"principals":{"claude_code.user":"alice@example.com","claude_code.session":"11111111-1111-4111-8111-111111111111"}`) {
		t.Errorf("spend log lacks the principals: %s", lastLine(gw.Spend.String()))
	}
	metrics := scrapeText(t, gw.AdminURL)
	if strings.Contains(metrics, "alice@example.com") || strings.Contains(metrics, "11111111-1111") {
		t.Error("a principal value appears in /metrics")
	}
	for _, want := range []string{
		`clade_gateway_budget_refusals_total{scope="principal",service="claude-code"} 3`,
		`clade_gateway_budget_refusals_total{scope="service",service="claude-code"} 1`,
		`clade_gateway_principals_active{from="claude_code.user",service="claude-code"} 3`,
		`clade_gateway_principals_active{from="claude_code.session",service="claude-code"} 3`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestClaudeCodeSessionCap(t *testing.T) {
	f, up := startUpstream(t)
	bigUsage(f)
	gw := testutil.StartApp(t, env(t, up.URL, claudeCodePolicy("1000", "1000", "8")))
	rec := loadRecorded(t, "main-extra-metadata.json")
	first := "aaaaaaaa-0000-4000-8000-000000000001"
	n, refusal := untilRefused(t, gw, rec, asDeveloper("alice@example.com", first))
	if n < 1 || !strings.Contains(refusal, "session "+first+" has ") || !strings.Contains(refusal, "the total budget of $8 for service claude-code") ||
		!strings.Contains(refusal, "it never resets") {
		t.Fatalf("first session: %d admitted, refusal %s", n, refusal)
	}
	code, body := replay(t, gw, rec, testutil.CanaryToken, asDeveloper("alice@example.com", "aaaaaaaa-0000-4000-8000-000000000002"))
	if code != http.StatusOK {
		t.Fatalf("alice's next session was refused: %d %s", code, body)
	}
	// A subagent's request, as recorded, counts under its session too.
	sub := loadRecorded(t, "subagent.json")
	code, body = replay(t, gw, sub, testutil.CanaryToken, func(h http.Header, b string) string {
		h.Set("X-Claude-Code-Session-Id", first)
		return b
	})
	if code != http.StatusPaymentRequired || !strings.Contains(body, "session "+first) {
		t.Errorf("a subagent of the capped session: %d %s", code, body)
	}
}

func TestClaudeCodeMissingIdentity(t *testing.T) {
	_, up := startUpstream(t)
	gw := testutil.StartApp(t, env(t, up.URL, claudeCodePolicy("1000", "20", "10")))
	// The SDK sends no metadata.user_id and no Claude Code headers: the
	// developer level rejects it (the default) before any hold.
	client := sdk(gw, testutil.CanaryToken)
	_, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{Model: "claude-opus-5-5", MaxTokens: 64, Messages: userMsg("hi")})
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest ||
		!strings.Contains(apiErr.RawJSON(), `service \"claude-code\" caps spend per developer, and this request has no metadata.user_id in Claude Code's format`) {
		t.Fatalf("no identity: %v", err)
	}
	// A value past 256 bytes is refused, also before any hold.
	rec := loadRecorded(t, "main-extra-metadata.json")
	code, body := replay(t, gw, rec, testutil.CanaryToken, asDeveloper(strings.Repeat("x", 257), "bbbbbbbb-0000-4000-8000-000000000001"))
	if code != http.StatusBadRequest || !strings.Contains(body, "is 257 bytes long; the gateway accepts at most 256") {
		t.Fatalf("a 257-byte developer: %d %s", code, body)
	}
	if lv := principalLevels(t, gw.AdminURL, "claude-code"); len(lv) != 0 {
		t.Errorf("refused requests created principals: %v", lv)
	}
}

// principalLevels reads GET /admin/budgets?service= and returns its
// principal rows by "<name>/<id>".
func principalLevels(t *testing.T, adminURL, service string) map[string]level {
	t.Helper()
	code, body := get(t, adminURL+"/admin/budgets?service="+service, testutil.AdminToken)
	if code != http.StatusOK {
		t.Fatalf("GET /admin/budgets?service=%s: %d %s", service, code, body)
	}
	var out struct {
		Budgets []struct {
			Scope, Name, ID string
			Limit           string `json:"limit_usd"`
			Spent           string `json:"spent_usd"`
			Reserved        string `json:"reserved_usd"`
		}
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	m := map[string]level{}
	for _, b := range out.Budgets {
		if b.Scope != "principal" {
			continue
		}
		l := level{limit: mustParse(t, b.Limit), spent: mustParse(t, b.Spent), reserved: mustParse(t, b.Reserved)}
		m[b.Name+"/"+b.ID] = l
	}
	return m
}

func mustParse(t *testing.T, s string) money.Nanos {
	t.Helper()
	n, err := money.Parse(s)
	if err != nil {
		t.Fatalf("amount %q: %v", s, err)
	}
	return n
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}
