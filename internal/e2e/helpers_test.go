package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// basePolicy is the test policy: one workspace with the canary key, a
// team, and two services with their own tokens: "recommendation" (Sonnet
// and Haiku, the budgets given) and "indexer".
func basePolicy(serviceBudgets ...testpolicy.Budget) testpolicy.Policy {
	return testpolicy.Policy{
		Workspaces: []testpolicy.Workspace{{Name: "production",
			Keys: []testpolicy.Key{{Name: "prod-backend", Env: "TEST_WORKSPACE_KEY", Created: "2026-09-01"}}}},
		Teams: []testpolicy.Team{{Name: "search", Budgets: []testpolicy.Budget{testpolicy.Monthly("5000", 0.5, 0.8)}}},
		Services: []testpolicy.Service{
			{Name: "recommendation", Team: "search", Workspace: "production", Tokens: []string{testutil.CanaryToken},
				Models: []string{"claude-sonnet-*", "claude-haiku-*"}, Budgets: serviceBudgets},
			{Name: "indexer", Team: "search", Workspace: "production", Tokens: []string{testutil.OtherToken}},
		},
		AdminTokens: []string{testutil.AdminToken},
	}
}

// env is a gateway environment against upstream with policy p.
func env(t testing.TB, upstream string, p testpolicy.Policy) map[string]string {
	dir := t.TempDir()
	return map[string]string{
		"CLADE_CONFIG":       testutil.WritePolicy(t, dir, p.YAML()),
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
