package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/fakeadmin"
	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// TestReconcileInServe: a gateway with the admin key reconciles in the
// background, exports what it found, and answers GET /admin/reconcile;
// the admin key appears in no log line, metric or answer.
func TestReconcileInServe(t *testing.T) {
	f, up := startUpstream(t)
	prices, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	adm := fakeadmin.New(testutil.CanaryAdminKey, f, map[string]fakeadmin.KeyInfo{
		testutil.CanaryKey: {APIKeyID: keyID, WorkspaceID: wsID},
	}, prices)
	admSrv := httptest.NewServer(adm)
	t.Cleanup(admSrv.Close)
	at := time.Now().UTC().AddDate(0, 0, -2).Truncate(24 * time.Hour).Add(3 * time.Hour)
	adm.InjectUsage(fakeadmin.Usage{At: at, APIKeyID: keyID, WorkspaceID: wsID, Model: "claude-sonnet-4-6",
		Tokens: fakeupstream.Usage{InputTokens: 1_000_000, OutputTokens: 100_000}})

	var mu sync.Mutex
	var hooks []map[string]string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		_ = json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		hooks = append(hooks, m)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)

	policy := reconcilePolicy(false)
	policy.Webhooks = []testpolicy.Webhook{{Name: "finance", URLEnv: "TEST_WEBHOOK_URL", Format: "json"}}
	e := env(t, up.URL, policy)
	e["TEST_WEBHOOK_URL"] = hook.URL
	e["TEST_ADMIN_KEY"] = testutil.CanaryAdminKey
	e["CLADE_ADMIN_API_URL"] = admSrv.URL
	e["CLADE_RECONCILE_INTERVAL"] = "200ms"
	gw := testutil.StartApp(t, e)

	deadline := time.Now().Add(15 * time.Second)
	for {
		text := scrapeText(t, gw.AdminURL)
		if strings.Contains(text, `clade_gateway_reconcile_drift_usd{kind="unmetered",workspace="production"} 4.5`) {
			if v := metricValue(t, text, "clade_gateway_reconcile_last_success_timestamp_seconds"); v < float64(time.Now().Add(-time.Minute).Unix()) {
				t.Errorf("last success %v: not recent", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no unmetered drift exported:\n%s\nlogs:\n%s", text, gw.Logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Several runs later, the webhook has heard of it once.
	time.Sleep(time.Second)
	mu.Lock()
	if len(hooks) != 1 || hooks[0]["event"] != "reconcile_unmetered" || hooks[0]["drift_usd"] != "4.5" ||
		hooks[0]["key"] != "prod-backend" || !strings.Contains(hooks[0]["text"], "rotate it") {
		t.Errorf("webhooks %v, want one reconcile_unmetered of 4.5 on prod-backend", hooks)
	}
	mu.Unlock()

	code, body := get(t, gw.AdminURL+"/admin/reconcile?from="+at.Format("2006-01-02"), testutil.AdminToken)
	if code != http.StatusOK || !strings.Contains(body, `"kind":"unmetered"`) || !strings.Contains(body, `"drift_usd":"4.5"`) {
		t.Errorf("GET /admin/reconcile: %d %s", code, body)
	}
	if code, _ := get(t, gw.AdminURL+"/admin/reconcile", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /admin/reconcile without the admin token: %d, want 401", code)
	}
	if code, _ := get(t, gw.AdminURL+"/admin/reconcile?from=yesterday", testutil.AdminToken); code != http.StatusBadRequest {
		t.Errorf("a bad date: %d, want 400", code)
	}

	// The Admin API refuses the key: runs fail and are counted.
	adm.FailNext(50, http.StatusUnauthorized, "")
	deadline = time.Now().Add(15 * time.Second)
	for metricValue(t, scrapeText(t, gw.AdminURL), "clade_gateway_reconcile_failed_runs_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("failed runs not counted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, s := range []string{gw.Logs.String(), gw.Spend.String(), scrapeText(t, gw.AdminURL)} {
		assertNoLeak(t, "logs and metrics", s)
	}
	if !strings.Contains(gw.Logs.String(), "unmetered spend found") {
		t.Error("unmetered spend was not logged")
	}
}
