package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// policyYAML is the test policy: one workspace with the canary key, two
// services with their own tokens, budgets as given.
func policyYAML(serviceBudgets string) string {
	return fmt.Sprintf(`
workspaces:
  production:
    keys:
      - {name: prod-backend, env: TEST_WORKSPACE_KEY, created: 2026-09-01}
teams:
  search:
    budgets:
      - {period: monthly, limit_usd: 5000, alert_at: [0.5, 0.8]}
services:
  recommendation:
    team: search
    workspace: production
    tokens:
      - sha256: %q
    models: ["claude-sonnet-*", "claude-haiku-*"]
    budgets:
%s
  indexer:
    team: search
    workspace: production
    tokens:
      - sha256: %q
admin:
  tokens:
    - sha256: %q
`, testutil.SHA256(testutil.CanaryToken), serviceBudgets, testutil.SHA256(testutil.OtherToken), testutil.SHA256(testutil.AdminToken))
}

// env is a gateway environment against upstream with the test policy.
func env(t testing.TB, upstream, policy string) map[string]string {
	dir := t.TempDir()
	return map[string]string{
		"CLADE_CONFIG":       testutil.WritePolicy(t, dir, policy),
		"CLADE_UPSTREAM_URL": upstream,
		"TEST_WORKSPACE_KEY": testutil.CanaryKey,
	}
}

func startUpstream(t testing.TB) (*fakeupstream.Server, *httptest.Server) {
	f := fakeupstream.New(testutil.CanaryKey)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// attempts counts the HTTP attempts an SDK client makes.
type attempts struct {
	n  int
	rt http.RoundTripper
}

func (a *attempts) RoundTrip(r *http.Request) (*http.Response, error) {
	a.n++
	return a.rt.RoundTrip(r)
}

func sdk(gw *testutil.App, token string, opts ...option.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]option.RequestOption{option.WithBaseURL(gw.URL), option.WithAPIKey(token)}, opts...)...)
}

func userMsg(text string) []anthropic.MessageParam {
	return []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))}
}

func get(t testing.TB, url, bearer string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// assertNoLeak fails if a canary secret appears in s.
func assertNoLeak(t *testing.T, where, s string) {
	t.Helper()
	for _, c := range []string{testutil.CanaryKey, testutil.CanaryToken, testutil.OtherToken, testutil.AdminToken, testutil.CanaryAdminKey} {
		if strings.Contains(s, c) {
			t.Errorf("%s contains a canary secret %q...", where, c[:12])
		}
	}
}
