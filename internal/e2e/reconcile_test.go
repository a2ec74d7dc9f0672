package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/clade-gateway/clade-gateway/internal/fakeadmin"
	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
	"github.com/clade-gateway/clade-gateway/internal/reconcile"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

const (
	wsID  = "wrkspc_01RecProd"
	keyID = "apikey_01RecBackend"
)

// reconcilePolicy is the test policy with Anthropic's IDs, a workspace
// budget for charged findings, and reconciliation configured.
func reconcilePolicy(chargeUnmetered bool) testpolicy.Policy {
	return testpolicy.Policy{
		Workspaces: []testpolicy.Workspace{{
			Name: "production", AnthropicID: wsID,
			Keys:    []testpolicy.Key{{Name: "prod-backend", Env: "TEST_WORKSPACE_KEY", AnthropicID: keyID}},
			Budgets: []testpolicy.Budget{testpolicy.Monthly("10000")},
		}},
		Teams:       []testpolicy.Team{{Name: "search"}},
		Services:    []testpolicy.Service{{Name: "recommendation", Team: "search", Workspace: "production", Tokens: []string{testutil.CanaryToken}}},
		AdminTokens: []string{testutil.AdminToken},
		Reconcile:   &testpolicy.Reconcile{AdminKeyEnv: "TEST_ADMIN_KEY", ChargeUnmetered: chargeUnmetered},
	}
}

// everyComponent makes the fake answer with every priced component: JSON
// responses write both cache TTLs, read cache and search the web; streams
// write 5-minute cache.
func everyComponent(_ *http.Request, _ string, stream bool) fakeupstream.Behavior {
	if stream {
		return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 500, CacheCreation: 50, Cache5m: 50, OutputTokens: 120}}
	}
	return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 1000, CacheCreation: 300, Cache5m: 100, Cache1h: 200,
		CacheRead: 400, OutputTokens: 250, WebSearch: 2}}
}

// runReconcile runs the reconcile command and returns its output and exit
// status.
func runReconcile(t *testing.T, bin string, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"reconcile"}, args...)...)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	for _, s := range []string{out.String(), errb.String()} {
		assertNoLeak(t, "reconcile output", s)
	}
	return out.String(), errb.String(), code
}

func decodeReport(t *testing.T, s string) reconcile.Report {
	t.Helper()
	var r reconcile.Report
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("reconcile --format json: %v\n%s", err, s)
	}
	return r
}

func usd(t *testing.T, s string) money.Nanos {
	t.Helper()
	n, err := money.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReconcileWithAnthropicsReports drives traffic of every cost
// component through two replicas (JSON, SSE, a batch), then reconciles it
// with a fake Admin API fed from what the fake upstream answered.
func TestReconcileWithAnthropicsReports(t *testing.T) {
	f, up := startUpstream(t)
	f.Behave = everyComponent
	prices, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	adm := fakeadmin.New(testutil.CanaryAdminKey, f, map[string]fakeadmin.KeyInfo{
		testutil.CanaryKey: {APIKeyID: keyID, WorkspaceID: wsID},
	}, prices)
	admSrv := httptest.NewServer(adm)
	t.Cleanup(admSrv.Close)

	// The replicas never get the admin key: they do not reconcile.
	reps := startReplicas(t, 2, up.URL, reconcilePolicy(true),
		"CLADE_GRANT_WINDOW", "50ms", "CLADE_BATCH_POLL_INTERVAL", "100ms")
	ctx := context.Background()
	for i, p := range reps {
		c := anthropic.NewClient(option.WithBaseURL(p.URL), option.WithAPIKey(testutil.CanaryToken))
		for j := range 3 {
			if _, err := c.Messages.New(ctx, anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 1024,
				Messages: userMsg(fmt.Sprintf("json %d %d", i, j)), Tools: webSearchTool}); err != nil {
				t.Fatal(err)
			}
			s := c.Messages.NewStreaming(ctx, anthropic.MessageNewParams{Model: "claude-haiku-4-5", MaxTokens: 1024,
				Messages: userMsg(fmt.Sprintf("sse %d %d", i, j)), Tools: webSearchTool})
			for s.Next() {
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	bc := anthropic.NewClient(option.WithBaseURL(reps[0].URL), option.WithAPIKey(testutil.CanaryToken))
	if _, err := bc.Messages.Batches.New(ctx, batchParams("a", "b")); err != nil {
		t.Fatal(err)
	}

	// Everything the fake billed is settled: the workspace budget has it.
	var want money.Nanos
	deadline := time.Now().Add(20 * time.Second)
	for {
		want = 0
		for _, a := range f.Answered() {
			u := a.Usage
			c, err := prices.Cost(meter.Usage{Model: a.Model, InputTokens: u.InputTokens, CacheCreationInputTokens: u.CacheCreation,
				CacheCreationSplit: u.Cache5m+u.Cache1h > 0, CacheWrite5mTokens: u.Cache5m, CacheWrite1hTokens: u.Cache1h,
				CacheReadInputTokens: u.CacheRead, OutputTokens: u.OutputTokens, WebSearchRequests: u.WebSearch,
				ServiceTier: u.ServiceTier}, a.At)
			if err != nil {
				t.Fatal(err)
			}
			want += c.Total
		}
		l := mustLevels(t, reps[1].AdminURL)["workspace/production/monthly"]
		if len(f.Answered()) == 14 && l.spent == want && l.reserved == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workspace spent %s reserved %s after %d answers, want %s", l.spent, l.reserved, len(f.Answered()), want)
		}
		time.Sleep(50 * time.Millisecond)
	}

	bin := testutil.BuildBinary(t)
	env := map[string]string{
		"CLADE_CONFIG":        reps[0].Env["CLADE_CONFIG"],
		"CLADE_REDIS_URL":     reps[0].Env["CLADE_REDIS_URL"],
		"CLADE_ADMIN_API_URL": admSrv.URL,
		"TEST_ADMIN_KEY":      testutil.CanaryAdminKey,
		"CLADE_DATA_DIR":      t.TempDir(),
	}
	now := time.Now().UTC()
	today := now.Format("2006-01-02")
	d := func(n int) string { return now.AddDate(0, 0, -n).Format("2006-01-02") }

	t.Run("gateway traffic matches to the cent", func(t *testing.T) {
		adm.FailNext(2, http.StatusTooManyRequests, "1") // rate limited: backs off and retries
		before := adm.Requests()
		out, errOut, code := runReconcile(t, bin, env, "--from", today, "--to", today, "--format", "json")
		if code != 0 {
			t.Fatalf("exit %d, want 0\n%s%s", code, out, errOut)
		}
		if n := adm.Requests() - before; n != 4 {
			t.Errorf("%d Admin API requests, want 4: two refused with 429, then one per report", n)
		}
		r := decodeReport(t, out)
		if len(r.Days) != 1 || len(r.Findings) != 0 {
			t.Fatalf("report %+v, want one day and no finding", r)
		}
		day := r.Days[0]
		if day.Date != today || day.Workspace != "production" || day.Final {
			t.Errorf("day %+v: want today, production, not final (the day is open)", day)
		}
		// The ledger is the budgets' charge, exactly; Anthropic's cost
		// report agrees to the cent.
		if money.Nanos(day.GatewayUSD) != want {
			t.Errorf("gateway_usd %s, want the workspace budget's charge %s", day.GatewayUSD, want)
		}
		// ... and the spend log's records.
		var logged money.Nanos
		var records int
		for _, p := range reps {
			for _, line := range strings.Split(p.Spend.String(), "\n") {
				var rec struct {
					Workspace string `json:"workspace"`
					TotalUSD  string `json:"total_usd"`
				}
				if json.Unmarshal([]byte(line), &rec) == nil && rec.TotalUSD != "" && rec.Workspace == "production" {
					logged += usd(t, rec.TotalUSD)
					records++
				}
			}
		}
		if logged != want || records != 14 {
			t.Errorf("spend log: %d records, %s USD; want 14 and %s", records, logged, want)
		}
		if d := money.Nanos(day.DriftUSD); d > money.PerUSD/100 || d < -money.PerUSD/100 {
			t.Errorf("drift %s: more than a cent", day.DriftUSD)
		}
		if !strings.Contains(out, `"gateway_usd": "`+day.GatewayUSD.String()+`"`) {
			t.Errorf("amounts are not exact decimal strings:\n%s", out)
		}
	})

	t.Run("direct use of a gateway key is unmetered, charged once", func(t *testing.T) {
		at := now.AddDate(0, 0, -3).Truncate(24 * time.Hour).Add(10 * time.Hour)
		adm.InjectUsage(fakeadmin.Usage{At: at, APIKeyID: keyID, WorkspaceID: wsID, Model: "claude-sonnet-4-6",
			Tokens: fakeupstream.Usage{InputTokens: 1_000_000, OutputTokens: 100_000}}) // $3 + $1.50
		before := mustLevels(t, reps[0].AdminURL)["workspace/production/monthly"].spent
		var logs string
		for run := range 2 {
			out, errOut, code := runReconcile(t, bin, env, "--from", d(3), "--to", today, "--format", "json")
			logs += errOut
			if code != 3 {
				t.Fatalf("run %d: exit %d, want 3\n%s%s", run, code, out, errOut)
			}
			r := decodeReport(t, out)
			want := reconcile.Finding{Kind: reconcile.Unmetered, Date: d(3), Workspace: "production", Key: "prod-backend",
				Model: "claude-sonnet-4-6", AnthropicUSD: reconcile.USD(usd(t, "4.5")), DriftUSD: reconcile.USD(usd(t, "4.5"))}
			if len(r.Findings) != 1 || r.Findings[0].Kind != want.Kind || r.Findings[0].Date != want.Date ||
				r.Findings[0].Key != want.Key || r.Findings[0].Model != want.Model || r.Findings[0].GatewayUSD != 0 ||
				r.Findings[0].AnthropicUSD != want.AnthropicUSD || r.Findings[0].DriftUSD != want.DriftUSD {
				t.Fatalf("run %d: findings %+v, want %+v", run, r.Findings, want)
			}
			if len(r.Days) != 4 || !r.Days[0].Final || r.Days[3].Final {
				t.Errorf("days %+v: want 4, closed ones final, today not", r.Days)
			}
		}
		after := mustLevels(t, reps[0].AdminURL)["workspace/production/monthly"].spent
		if after-before != usd(t, "4.5") {
			t.Errorf("workspace budget charged %s over two runs, want 4.5 once\n%s", after-before, logs)
		}
		// A person reads the same as a table.
		out, _, code := runReconcile(t, bin, env, "--from", d(3), "--to", today)
		if code != 3 || !strings.Contains(out, "unmetered key=prod-backend model=claude-sonnet-4-6") || !strings.Contains(out, "EXCEEDS") {
			t.Errorf("table (exit %d):\n%s", code, out)
		}
	})

	t.Run("Console use and code execution", func(t *testing.T) {
		at := now.AddDate(0, 0, -2).Truncate(24 * time.Hour).Add(9 * time.Hour)
		adm.InjectUsage(fakeadmin.Usage{At: at, WorkspaceID: wsID, Model: "claude-haiku-4-5",
			Tokens: fakeupstream.Usage{InputTokens: 10_000, OutputTokens: 1_000}}) // $0.01 + $0.005
		adm.InjectCost(fakeadmin.Cost{Day: at.Truncate(24 * time.Hour), WorkspaceID: wsID, CostType: "code_execution",
			Description: "Code Execution Usage", Amount: usd(t, "0.37")})
		out, errOut, code := runReconcile(t, bin, env, "--from", d(2), "--to", d(2), "--format", "json")
		if code != 3 {
			t.Fatalf("exit %d, want 3 (Console use is unmetered)\n%s%s", code, out, errOut)
		}
		r := decodeReport(t, out)
		kinds := map[string]reconcile.Finding{}
		for _, f := range r.Findings {
			kinds[f.Kind] = f
		}
		if f := kinds[reconcile.Unmetered]; f.Key != "" || f.AnthropicUSD != reconcile.USD(usd(t, "0.015")) {
			t.Errorf("Console use: %+v, want unmetered with no key, 0.015", f)
		}
		if f := kinds[reconcile.NotMeteredByDesign]; f.AnthropicUSD != reconcile.USD(usd(t, "0.37")) || f.GatewayUSD != 0 {
			t.Errorf("code execution: %+v, want not metered by design, 0.37", f)
		}
		if len(r.Findings) != 2 || money.Nanos(r.Days[0].DriftUSD) != usd(t, "0.385") {
			t.Errorf("report %+v", r)
		}
	})

	t.Run("a changed price is price drift", func(t *testing.T) {
		base, err := pricing.Default()
		if err != nil {
			t.Fatal(err)
		}
		raised, err := pricing.New(base, policy.Pricing{Models: map[string]policy.ModelPrice{"claude-sonnet-4-6": {
			Input: usd(t, "6"), Output: usd(t, "15"), CacheWrite5m: usd(t, "7.5"), CacheWrite1h: usd(t, "12"), CacheRead: usd(t, "0.6")}}})
		if err != nil {
			t.Fatal(err)
		}
		adm.SetPrices(raised)
		t.Cleanup(func() { adm.SetPrices(prices) })
		out, errOut, code := runReconcile(t, bin, env, "--from", today, "--to", today, "--format", "json")
		if code != 0 {
			t.Errorf("exit %d, want 0: price drift on an open day does not fail the run\n%s%s", code, out, errOut)
		}
		r := decodeReport(t, out)
		if len(r.Findings) != 1 || r.Findings[0].Kind != reconcile.PriceDrift || r.Findings[0].Model != "claude-sonnet-4-6" ||
			r.Findings[0].DriftUSD <= 0 || r.Days[0].Final {
			t.Errorf("report %+v, want one price drift on claude-sonnet-4-6, today open", r)
		}
	})

	t.Run("a wrong admin key is a clear error", func(t *testing.T) {
		bad := map[string]string{}
		for k, v := range env {
			bad[k] = v
		}
		bad["TEST_ADMIN_KEY"] = "sk-ant-admin01-WRONG"
		_, errOut, code := runReconcile(t, bin, bad, "--from", today)
		if code != 1 || !strings.Contains(errOut, "admin key was refused") || strings.Contains(errOut, "WRONG") {
			t.Errorf("exit %d, stderr %q: want 1 and a message that names no key", code, errOut)
		}
		bad["CLADE_ADMIN_API_URL"] = "http://127.0.0.1:1"
		delete(bad, "TEST_ADMIN_KEY")
		if _, errOut, code := runReconcile(t, bin, bad); code != 1 || !strings.Contains(errOut, "TEST_ADMIN_KEY is not set") {
			t.Errorf("without the key: exit %d, %q", code, errOut)
		}
	})
	for _, p := range reps {
		assertNoLeak(t, "replica logs", p.Logs.String())
	}
}

// webSearchTool declares the web search the fake's answers bill: usage
// the request could not incur is charged the hold's estimate instead.
var webSearchTool = []anthropic.ToolUnionParam{{OfWebSearchTool20250305: &anthropic.WebSearchTool20250305Param{MaxUses: anthropic.Int(2)}}}
