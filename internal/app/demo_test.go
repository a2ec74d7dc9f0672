package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/clade-gateway/clade-gateway/internal/app"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// The demo is the real gateway against the built-in fake API: the printed
// first request succeeds and is priced, the budgets show it, and the
// printed loop ends in a 402. A real key in the shell is never used.
func TestDemo(t *testing.T) {
	api, adm := "127.0.0.1:"+strconv.Itoa(testutil.FreePort(t)), "127.0.0.1:"+strconv.Itoa(testutil.FreePort(t))
	env := map[string]string{
		"CLADE_CONFIG":       filepath.Join("..", "..", "deploy", "clade.yaml"),
		"CLADE_LISTEN":       api,
		"CLADE_ADMIN_LISTEN": adm,
		"CLADE_UPSTREAM_URL": "https://api.anthropic.com", // ignored by the demo
		"ANTHROPIC_API_KEY":  testutil.CanaryKey,          // never read by the demo
	}
	out, logs := &testutil.Buffer{}, &testutil.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, []string{"demo"}, func(k string) string { return env[k] }, nil, out, logs)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C stops the demo") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner; output:\n%s\nlogs:\n%s", out, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	banner := out.String()
	for _, want := range []string{"DEMO", "FAKE Anthropic API", "http://" + api, "clade_sk_demo_recommendation_change_me",
		"http://" + adm + "/admin/budgets", "indexer service into its daily budget of $2", "seq 40"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}

	post := func(token string, body string) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+api+"/v1/messages", strings.NewReader(body))
		req.Header.Set("x-api-key", token)
		req.Header.Set("anthropic-version", "2023-06-01")
		req.Header.Set("content-type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post("clade_sk_demo_recommendation_change_me", `{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"Hello"}]}`)
	if code != 200 || !strings.Contains(body, "[clade-gateway demo]") {
		t.Fatalf("first request: %d %s", code, body)
	}
	waitFor(t, func() bool {
		return strings.Contains(out.String(), "spend: $0.000342  recommendation  claude-haiku-4-5  22 input + 64 output tokens")
	},
		func() string { return out.String() })

	// The spend record is written as the response ends and the
	// settlement follows it: the budgets view shows the spend once it has.
	var budgets string
	waitFor(t, func() bool {
		req, _ := http.NewRequest("GET", "http://"+adm+"/admin/budgets", nil)
		req.Header.Set("Authorization", "Bearer clade_admin_demo_change_me")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		budgets = string(b)
		return strings.Contains(budgets, `"name":"recommendation","id":"daily","period":"daily"`) && strings.Contains(budgets, `"spent_usd":"0.000342"`)
	}, func() string { return "budgets: " + budgets })

	// The official SDK, as Claude Code would connect (Bearer token, stream).
	client := anthropic.NewClient(option.WithBaseURL("http://"+api), option.WithAuthToken("clade_sk_demo_recommendation_change_me"))
	stream := client.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{Model: "claude-haiku-4-5", MaxTokens: 32,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}})
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil || msg.Usage.OutputTokens != 32 {
		t.Fatalf("SDK stream: %v, usage %+v", err, msg.Usage)
	}

	loop := `{"model":"claude-sonnet-4-6","max_tokens":4096,"messages":[{"role":"user","content":"Hello"}]}`
	var codes []int
	var refused string
	for i := 0; i < 40; i++ {
		// Each request starts after the one before it settled, so the
		// refusal's figures are those of settled spend.
		waitFor(t, func() bool { _, r := demoBudget(t, adm, "indexer"); return r == 0 }, func() string { return out.String() })
		c, body := post("clade_sk_demo_indexer_change_me", loop)
		codes = append(codes, c)
		if c == 402 {
			refused = body
			break
		}
		if c != 200 {
			t.Fatalf("loop request %d: %d %s", i, c, body)
		}
	}
	if codes[len(codes)-1] != 402 {
		t.Fatalf("40 requests never reached the cap: %v", codes)
	}
	spent, _ := demoBudget(t, adm, "indexer")
	checkDemoRefusal(t, refused, loop, spent)
	if bytes.Contains([]byte(out.String()+logs.String()), []byte(testutil.CanaryKey)) {
		t.Error("the shell's key appears in the demo's output")
	}
}

// checkDemoRefusal checks the loop's 402 against the documented rule: it
// states what is left of the $2 daily budget, what the request needed at
// worst (its prompt at the input rate, as it has no cache_control, and
// 1.1x as it names no inference_geo) and the largest max_tokens that fits;
// it says "has reached" only when what is left is below the smallest
// useful request (the prompt and min_max_tokens of output).
func checkDemoRefusal(t *testing.T, body, loop string, spent money.Nanos) {
	t.Helper()
	var r struct {
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
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("402 body %s: %v", body, err)
	}
	tbl, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	req := pricing.Request{Model: "claude-sonnet-4-6", PromptBytes: int64(len(loop)), MaxTokens: 4096,
		InferenceGeoUS: true, Cache: pricing.CacheNone}
	needed, err := tbl.Estimate(req, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	split, err := tbl.EstimateSplit(req, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	left := money.USD(2) - spent
	smallest, _ := split.For(policy.DefaultMinMaxTokens)
	fits := max(int64(left-split.Fixed)/int64(split.PerToken), 0)
	d := r.Error.Details
	if r.Error.Type != "billing_error" || d.ErrorCode != "budget_exceeded" || left >= needed ||
		d.NeededUSD.String() != needed.String() || d.RemainingUSD.String() != left.String() || d.MaxTokensThatFit == nil || *d.MaxTokensThatFit != fits {
		t.Errorf("402 body %s; want needed %s, remaining %s, max_tokens_that_fit %d", body, needed, left, fits)
	}
	want := fmt.Sprintf(`Service "indexer" daily budget "daily" of $2 has $%s left (spent $%s, reserved by requests in flight $0), but this request needs up to $%s (its prompt and max_tokens 4096 at worst); max_tokens up to %d would fit;`,
		left, spent, needed, fits)
	if left < smallest {
		want = `Service "indexer" has reached its daily budget "daily" of $2`
	}
	if !strings.Contains(r.Error.Message, want) {
		t.Errorf("402 message %q, want it to contain %q", r.Error.Message, want)
	}
}

// demoBudget is what service has spent of its daily budget and what
// requests in flight hold, from the admin API.
func demoBudget(t *testing.T, adm, service string) (spent, reserved money.Nanos) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+adm+"/admin/budgets", nil)
	req.Header.Set("Authorization", "Bearer clade_admin_demo_change_me")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Budgets []struct {
			Scope, Name, ID string
			Spent           string `json:"spent_usd"`
			Reserved        string `json:"reserved_usd"`
		} `json:"budgets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	for _, b := range out.Budgets {
		if b.Scope == "service" && b.Name == service && b.ID == "daily" {
			s, err1 := money.Parse(b.Spent)
			r, err2 := money.Parse(b.Reserved)
			if err1 != nil || err2 != nil {
				t.Fatalf("budget amounts %q %q", b.Spent, b.Reserved)
			}
			return s, r
		}
	}
	t.Fatalf("no daily budget for %s", service)
	return 0, 0
}

func waitFor(t *testing.T, cond func() bool, show func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met; output:\n%s", show())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The demo's tokens are in the repository: it never listens beyond
// loopback, whatever the shell says.
func TestDemoRefusesNonLoopbackListen(t *testing.T) {
	for _, env := range []map[string]string{{"CLADE_LISTEN": ":8080"}, {"CLADE_ADMIN_LISTEN": "0.0.0.0:9090"}} {
		env["CLADE_CONFIG"] = filepath.Join("..", "..", "deploy", "clade.yaml")
		err := app.Run(context.Background(), []string{"demo"}, func(k string) string { return env[k] }, nil, &testutil.Buffer{}, &testutil.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "loopback only") {
			t.Errorf("%v: %v", env, err)
		}
	}
}
