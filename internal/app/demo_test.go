package app_test

import (
	"bytes"
	"context"
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

	req, _ := http.NewRequest("GET", "http://"+adm+"/admin/budgets", nil)
	req.Header.Set("Authorization", "Bearer clade_admin_demo_change_me")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"name":"recommendation","id":"daily","period":"daily"`) || !strings.Contains(string(b), `"spent_usd":"0.000342"`) {
		t.Errorf("budgets: %s", b)
	}

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
	for i := 0; i < 40; i++ {
		c, body := post("clade_sk_demo_indexer_change_me", loop)
		codes = append(codes, c)
		if c == 402 {
			if !strings.Contains(body, `"type":"billing_error"`) || !strings.Contains(body, `Service \"indexer\" has reached its daily budget`) {
				t.Errorf("402 body %s", body)
			}
			break
		}
		if c != 200 {
			t.Fatalf("loop request %d: %d %s", i, c, body)
		}
	}
	if codes[len(codes)-1] != 402 {
		t.Fatalf("40 requests never reached the cap: %v", codes)
	}
	if bytes.Contains([]byte(out.String()+logs.String()), []byte(testutil.CanaryKey)) {
		t.Error("the shell's key appears in the demo's output")
	}
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
