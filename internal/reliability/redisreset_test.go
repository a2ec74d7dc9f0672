package reliability

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// Scenario 3: Redis restarts empty. The service's cap was exhausted before
// the restart; a gateway that trusted the empty store would admit against
// counters back at zero. It must notice (the store epoch is gone), refuse
// with 503 until an operator re-initialises the store, and then admit
// again, counting from what the store holds (zero): that loss is the
// operator's documented decision, and shows as negative drift.
func TestReliabilityRedisRestartedEmpty(t *testing.T) {
	r := newRow(t, "3. Redis restarted empty, cap exhausted before (reject)")
	rd := startRedis(t)
	f, up := startUpstream(t)
	body := messageBody(300, false)
	// Room for one request: its hold fits, a second hold on top of the
	// first one's actual cost does not.
	limit := money.Nanos(defaultCost) + estimateOf(body, 300) - 1
	gw := testutil.StartApp(t, gatewayEnv(t, up.URL, policySpec{Limit: limit.String()}, rd.URL(), nil))
	c := newClient(t, 10*time.Second)
	var bodies strings.Builder
	do := func() reply {
		x := send(c, gw.URL, testutil.CanaryToken, body, nil)
		bodies.WriteString(x.body)
		return x
	}

	if x := do(); x.status != 200 {
		t.Fatalf("first request: %d %s", x.status, x.body)
	}
	if _, ok := waitBudget(t, gw.AdminURL, 5*time.Second, func(l budgetLevel) bool { return l.Spent == defaultCost }); !ok {
		t.Fatal("first request not settled")
	}
	if x := do(); x.status != 402 || !strings.Contains(x.body, "budget_exceeded") {
		t.Fatalf("the cap should be exhausted: %d %s", x.status, x.body)
	}

	rd.Kill()
	rd.Restart() // no persistence: every key, the epoch included, is gone
	const tries = 10
	var refused, named int
	for range tries {
		x := do()
		if x.status == 503 && x.retryAfter != "" {
			refused++
		} else {
			t.Errorf("after the empty restart: %d (Retry-After %q) %s", x.status, x.retryAfter, x.body)
		}
		if strings.Contains(x.body, "lost its data") {
			named++
		}
	}
	if named == 0 {
		t.Error("no refusal said the store lost its data")
	}
	if code := adminCall(t, http.MethodGet, gw.AdminURL+"/readyz", ""); code != 503 {
		t.Errorf("/readyz = %d with a reset store, want 503", code)
	}
	if code := adminCall(t, http.MethodPost, gw.AdminURL+"/admin/store/reinit", "not-the-admin-token"); code != 401 {
		t.Errorf("reinit with a wrong token = %d, want 401", code)
	}
	if got := f.Messages(); got != 1 {
		t.Errorf("the upstream answered %d messages; only the first request may have reached it", got)
	}

	reinitAt := time.Now()
	if code := adminCall(t, http.MethodPost, gw.AdminURL+"/admin/store/reinit", testutil.AdminToken); code != 200 {
		t.Fatalf("reinit = %d", code)
	}
	x := do()
	if x.status != 200 {
		t.Fatalf("after reinit: %d %s", x.status, x.body)
	}
	recovery := x.end.Sub(reinitAt)
	lv, ok := waitBudget(t, gw.AdminURL, 5*time.Second, func(l budgetLevel) bool { return l.Spent == defaultCost && l.Reserved == 0 })
	if !ok {
		t.Errorf("after reinit the store counts from zero: want spent %s, got %+v", money.Nanos(defaultCost), lv)
	}
	if x := do(); x.status != 402 {
		t.Errorf("the cap is enforced again after reinit: got %d %s", x.status, x.body)
	}

	recs := spendRecords(t, gw.Spend.String())
	m := scrape(t, gw.AdminURL)
	r.Load = fmt.Sprintf("%d sequential req", tries+5)
	r.Faults = fmt.Sprintf("Redis SIGKILL + empty restart; %d/%d refused 503 until POST /admin/store/reinit", refused, tries)
	r.Unmetered = fmt.Sprint(f.Messages() - int64(len(recs)))
	r.Drift = nanos(lv.Spent-truthCost(f)) + " (pre-restart spend lost with the data; reinit counts from zero)"
	r.Double = fmt.Sprint(doubleCharges(recs))
	r.Leaks = fmt.Sprint(leaks(gw.Logs.String(), gw.Spend.String(), m, bodies.String()))
	r.Recovery = ms(recovery) + " from reinit to first 200"
	if f.Messages() != int64(len(recs)) || doubleCharges(recs) != 0 || r.Leaks != "0" {
		t.Errorf("unmetered %s, double %s, leaks %s", r.Unmetered, r.Double, r.Leaks)
	}
}

// adminCall sends a bodyless admin request and returns the status.
func adminCall(t *testing.T, method, url, bearer string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, url, err)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
