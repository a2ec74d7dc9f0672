package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/redis/go-redis/v9"

	"github.com/clade-gateway/clade-gateway/internal/app"
	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/redisstore"
	"github.com/clade-gateway/clade-gateway/internal/checklist"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
	"github.com/clade-gateway/clade-gateway/internal/trail"
)

func adjust(t *testing.T, gw *testutil.App, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, gw.AdminURL+"/admin/budgets/adjust", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testutil.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("adjust: %d", resp.StatusCode)
	}
}

func adminChecklist(t *testing.T, gw *testutil.App) (checklist.Report, map[string]checklist.Item) {
	t.Helper()
	if code, _ := get(t, gw.AdminURL+"/admin/checklist", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /admin/checklist without the admin token: %d, want 401", code)
	}
	code, body := get(t, gw.AdminURL+"/admin/checklist", testutil.AdminToken)
	if code != http.StatusOK {
		t.Fatalf("GET /admin/checklist: %d %s", code, body)
	}
	assertNoLeak(t, "GET /admin/checklist", body)
	var rep checklist.Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	items := map[string]checklist.Item{}
	for _, it := range rep.Items {
		items[it.ID] = it
	}
	return rep, items
}

// The running gateway records token use and adjustments in the embedded
// store, serves the checklist on the admin API and in metrics, and the
// command reads the same store once the gateway has stopped.
func TestChecklistServedAndRecordedEmbedded(t *testing.T) {
	_, up := startUpstream(t)
	ge := env(t, up.URL, basePolicy(testpolicy.Daily("10")))
	gw := testutil.StartApp(t, ge)
	client := sdk(gw, testutil.CanaryToken)
	for i := 0; i < 3; i++ {
		if _, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 64, Messages: userMsg("hi")}); err != nil {
			t.Fatal(err)
		}
	}
	adjust(t, gw, `{"scope":"team","name":"search","id":"monthly","amount_usd":"-12.5","reason":"refund for an outage","actor":"alice"}`)

	rep, items := adminChecklist(t, gw)
	if !rep.Live || len(rep.Items) != len(checklist.Items()) {
		t.Fatalf("report: live %v, %d items", rep.Live, len(rep.Items))
	}
	adj := items[checklist.ItemBudgetAdjustments]
	if adj.Status != checklist.Warn || len(adj.Details) != 1 || !strings.Contains(adj.Details[0], "team/search/monthly adjusted by -12.5 USD by "+adminActor) ||
		!strings.Contains(adj.Details[0], "reason: refund for an outage") {
		t.Errorf("budget_adjustments: %+v", adj)
	}
	if it := items[checklist.ItemAdminListener]; it.Status != checklist.Pass {
		t.Errorf("admin listener on loopback: %+v", it)
	}
	// The policy has no webhook: no alert reaches the team.
	if it := items[checklist.ItemTeamAlerts]; it.Status != checklist.Fail {
		t.Errorf("team_alerts: %+v", it)
	}

	mfs := scrape(t, gw.AdminURL)
	for _, tc := range []struct {
		item, status string
		want         float64
	}{
		{"budget_adjustments", "warn", 1}, {"budget_adjustments", "pass", 0}, {"budget_adjustments", "fail", 0},
		{"team_alerts", "fail", 1}, {"admin_listener", "pass", 1},
	} {
		if v, ok := value(mfs, "clade_gateway_checklist_items", map[string]string{"item": tc.item, "status": tc.status}); !ok || v != tc.want {
			t.Errorf("clade_gateway_checklist_items{item=%q,status=%q} = %v (present %v), want %v", tc.item, tc.status, v, ok, tc.want)
		}
	}
	if n := len(mfs["clade_gateway_checklist_items"].GetMetric()); n != 3*len(checklist.Items()) {
		t.Errorf("%d checklist series, want %d", n, 3*len(checklist.Items()))
	}

	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	r, err := boltstore.OpenRecordReader(filepath.Join(gw.Dir, "budgets.db"))
	if err != nil {
		t.Fatal(err)
	}
	used, since, err := trail.Reader{Records: r}.LastUsed(context.Background())
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if at, ok := used[sha256.Sum256([]byte(testutil.CanaryToken))]; !ok || time.Since(at) > time.Hour || since.IsZero() {
		t.Errorf("last use of the token that made requests: %v (recorded %v), since %v", at, ok, since)
	}
	if _, ok := used[sha256.Sum256([]byte(testutil.OtherToken))]; ok || len(used) != 1 {
		t.Errorf("last-used records %v: only the token that made requests belongs there", used)
	}

	var out bytes.Buffer
	e := map[string]string{"CLADE_DATA_DIR": gw.Dir}
	err = app.Run(context.Background(), []string{"checklist", ge["CLADE_CONFIG"]}, func(k string) string { return e[k] }, nil, &out, &out)
	if err == nil {
		t.Error("the test policy has no webhook, so the command must exit 1")
	}
	for _, frag := range []string{"FAIL team_alerts: ", "WARN budget_adjustments: budget adjustments in the last 30 days to review: ", "team/search/monthly -12.5 USD by " + adminActor} {
		if !strings.Contains(out.String(), frag) {
			t.Errorf("command output lacks %q:\n%s", frag, out.String())
		}
	}
}

// With Redis, the last use reaches the store shared by replicas.
func TestChecklistLastUsedRedis(t *testing.T) {
	r := testutil.StartRedis(t)
	_, up := startUpstream(t)
	e := env(t, up.URL, basePolicy(testpolicy.Daily("10")))
	e["CLADE_REDIS_URL"] = r.URL()
	gw := testutil.StartApp(t, e)
	client := sdk(gw, testutil.OtherToken)
	if _, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{Model: "claude-haiku-4-5", MaxTokens: 64, Messages: userMsg("hi")}); err != nil {
		t.Fatal(err)
	}
	adjust(t, gw, `{"scope":"service","name":"recommendation","id":"daily","amount_usd":"1","reason":"manual charge","actor":"bob"}`)

	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), ContextTimeoutEnabled: true})
	defer rdb.Close()
	reader := trail.Reader{Records: redisstore.NewRecordReader(rdb, "", time.Second)}
	want := sha256.Sum256([]byte(testutil.OtherToken))
	// The write is asynchronous: wait for it (not a timing assertion).
	deadline := time.Now().Add(10 * time.Second)
	for {
		used, _, err := reader.LastUsed(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := used[want]; ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no last-used record in Redis after a request; records: %v", used)
		}
		time.Sleep(20 * time.Millisecond)
	}
	adj, err := reader.Adjustments(context.Background(), time.Now().Add(-time.Hour))
	if err != nil || len(adj) != 1 || adj[0].Actor != adminActor || adj[0].AmountUSD != "1" || adj[0].Scope != "service" {
		t.Errorf("adjustments in Redis: %+v %v", adj, err)
	}

	// The command reads the same Redis while the gateway runs.
	var out bytes.Buffer
	cmdEnv := map[string]string{"CLADE_REDIS_URL": r.URL()}
	err = app.Run(context.Background(), []string{"checklist", e["CLADE_CONFIG"]}, func(k string) string { return cmdEnv[k] }, nil, &out, &out)
	if err == nil {
		t.Error("the test policy has no webhook, so the command must exit 1")
	}
	if !strings.Contains(out.String(), "WARN budget_adjustments: budget adjustments in the last 30 days to review: ") ||
		!strings.Contains(out.String(), "service/recommendation/daily 1 USD by "+adminActor) {
		t.Errorf("command output:\n%s", out.String())
	}
}

// adminActor is how the audit trail names the test policy's admin token,
// which has no name: who authenticated, whatever the caller's "actor" says.
var adminActor = "sha256:" + testutil.SHA256(testutil.AdminToken)[:12]
