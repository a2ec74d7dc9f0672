package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// strayKey is an Anthropic key left in a developer's shell profile
// (ANTHROPIC_API_KEY) while ANTHROPIC_AUTH_TOKEN holds the service token.
const strayKey = "sk-ant-api03-STRAYKEYFROMSHELLPROFILE0123456789abcdef"

// Claude Code with both variables set sends both headers on every call, as
// its SDK does: x-api-key from ANTHROPIC_API_KEY and Authorization: Bearer
// from ANTHROPIC_AUTH_TOKEN. The service token wins; the stray key is
// neither forwarded nor logged.
func TestClaudeCodeWithStrayAPIKey(t *testing.T) {
	f, up := startUpstream(t)
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("50"))))

	// The request as Claude Code sends it (headers read from its traffic).
	body := `{"model":"claude-haiku-4-5","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
	req, _ := http.NewRequest("POST", gw.URL+"/v1/messages?beta=true", strings.NewReader(body))
	req.Header.Set("x-api-key", strayKey)
	req.Header.Set("authorization", "Bearer "+testutil.CanaryToken)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14")
	req.Header.Set("x-app", "cli")
	req.Header.Set("user-agent", "claude-cli/2.1.0 (external, cli)")
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), "message_stop") {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}

	// The same through the official SDK with both credentials set.
	counter := &attempts{rt: http.DefaultTransport}
	client := anthropic.NewClient(option.WithBaseURL(gw.URL), option.WithAPIKey(strayKey), option.WithAuthToken(testutil.CanaryToken),
		option.WithHTTPClient(&http.Client{Transport: counter}))
	if _, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{Model: "claude-haiku-4-5", MaxTokens: 64, Messages: userMsg("hi")}); err != nil {
		t.Fatalf("SDK with both credentials: %v", err)
	}

	for _, s := range f.Requests() {
		if got := s.Header.Values("X-Api-Key"); len(got) != 1 || got[0] != testutil.CanaryKey {
			t.Errorf("upstream x-api-key is not the workspace key alone")
		}
		if len(s.Header.Values("Authorization")) != 0 {
			t.Error("upstream got an Authorization header")
		}
	}
	if f.Messages() != 2 {
		t.Errorf("upstream answered %d messages, want 2", f.Messages())
	}
	if strings.Contains(gw.Logs.String(), strayKey) || strings.Contains(gw.Spend.String(), strayKey) {
		t.Error("the stray key is in the logs")
	}
	assertNoLeak(t, "logs", gw.Logs.String())
}

// When neither credential is a service token (the token variable holds a
// typo, the key variable an Anthropic key), the SDK gets one 401, does not
// retry, and the message names the variable to unset.
func TestClaudeCodeBothCredentialsWrongStopsAtOnce(t *testing.T) {
	f, up := startUpstream(t)
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("50"))))
	counter := &attempts{rt: http.DefaultTransport}
	client := anthropic.NewClient(option.WithBaseURL(gw.URL), option.WithAPIKey(strayKey), option.WithAuthToken("clade_sk_mistyped"),
		option.WithHTTPClient(&http.Client{Transport: counter}))
	_, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{Model: "claude-haiku-4-5", MaxTokens: 64, Messages: userMsg("hi")})
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("err = %v, want a 401", err)
	}
	if counter.n != 1 {
		t.Errorf("the SDK made %d attempts, want 1 (x-should-retry: false)", counter.n)
	}
	for _, want := range []string{"conflicting credentials", "unset ANTHROPIC_API_KEY", "set ANTHROPIC_AUTH_TOKEN to your service token"} {
		if !strings.Contains(apiErr.Error(), want) {
			t.Errorf("error %q lacks %q", apiErr.Error(), want)
		}
	}
	if f.Messages() != 0 || len(f.Requests()) != 0 {
		t.Error("a refused request reached the upstream")
	}
	if !strings.Contains(gw.Logs.String(), `"reason":"conflicting_credentials"`) {
		t.Errorf("no conflicting_credentials log line:\n%s", gw.Logs.String())
	}
}
