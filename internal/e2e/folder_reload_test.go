package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// A platform folder with one team file per team; the gateway serves
// requests throughout while team files are added, changed, broken and
// removed, and shows each effect (none for the broken file).
func TestPolicyFolderReload(t *testing.T) {
	_, up := startUpstream(t)
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("clade.yaml", `
workspaces:
  production:
    keys: [{name: prod, env: TEST_WORKSPACE_KEY}]
    teams: [search, ads]
admin:
  tokens: [{sha256: "`+testutil.SHA256(testutil.AdminToken)+`"}]
`)
	searchTeam := func(limit string) string {
		return `
budgets:
  - {period: monthly, limit_usd: 100}
services:
  recommendation:
    workspace: production
    tokens: [{sha256: "` + testutil.SHA256(testutil.CanaryToken) + `"}]
    budgets: [{period: daily, limit_usd: ` + limit + `}]
`
	}
	adsTeam := `
services:
  ads-ranker:
    workspace: production
    tokens: [{sha256: "` + testutil.SHA256(testutil.OtherToken) + `"}]
`
	write("teams/search.yaml", searchTeam("50"))
	gw := testutil.StartApp(t, map[string]string{"CLADE_CONFIG": dir, "CLADE_UPSTREAM_URL": up.URL, "TEST_WORKSPACE_KEY": testutil.CanaryKey})

	status := func(token string) int {
		req, _ := http.NewRequest("POST", gw.URL+"/v1/messages", strings.NewReader(`{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("x-api-key", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s never happened; logs:\n%s", what, gw.Logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	budgets := func() string { _, b := get(t, gw.AdminURL+"/admin/budgets", testutil.AdminToken); return b }

	if got := status(testutil.CanaryToken); got != 200 {
		t.Fatalf("search service: %d", got)
	}
	if got := status(testutil.OtherToken); got != 401 {
		t.Fatalf("ads service before its file exists: %d", got)
	}

	write("teams/ads.yaml", adsTeam) // add a team
	eventually("the ads team's token starts working", func() bool { return status(testutil.OtherToken) == 200 })

	write("teams/search.yaml", searchTeam("75")) // change a budget
	eventually("the daily budget is raised to 75", func() bool {
		return strings.Contains(budgets(), `"id":"daily","period":"daily"`) && strings.Contains(budgets(), `"limit_usd":"75"`)
	})

	write("teams/ads.yaml", adsTeam+"    bogus: true\n") // break a file: rejected whole
	eventually("the broken file is reported", func() bool { return strings.Contains(gw.Logs.String(), "policy rejected") })
	if got := status(testutil.OtherToken); got != 200 {
		t.Errorf("a broken team file changed the running policy: ads token got %d", got)
	}
	if !strings.Contains(budgets(), `"limit_usd":"75"`) {
		t.Error("the running policy did not stay after a broken reload")
	}

	if err := os.Remove(filepath.Join(dir, "teams", "ads.yaml")); err != nil { // remove a team
		t.Fatal(err)
	}
	eventually("the removed team's token is revoked", func() bool { return status(testutil.OtherToken) == 401 })
	if got := status(testutil.CanaryToken); got != 200 {
		t.Errorf("search service after ads removal: %d", got)
	}
	_, metrics := get(t, gw.AdminURL+"/metrics", "")
	if !strings.Contains(metrics, `clade_gateway_config_reloads_total{result="failure"} 1`) {
		t.Errorf("reload failure not counted")
	}
}
