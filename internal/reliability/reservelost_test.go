package reliability

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/testproc"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// Scenario 1b: the fault scenario 1 hits by chance, made certain. Redis
// runs the reserve script, its reply is lost, and the client's retry finds
// nothing listening, so the call ends in a dial error although the hold
// was placed. The gateway must release that hold as soon as the store is
// back (journaled zero settlement), not leave it to expire into a charge
// for a request that was refused.
func TestReliabilityReserveReplyLost(t *testing.T) {
	r := newRow(t, "1b. Reserve ran, reply lost, reconnect refused (reject)")
	rd := startRedis(t)
	relay := testproc.StartRelay(t, rd.Addr())
	f, up := startUpstream(t)
	// A lease far longer than the test: only a release can free the hold.
	gw := testutil.StartApp(t, gatewayEnv(t, up.URL, policySpec{}, relay.URL(), map[string]string{"CLADE_HOLD_TTL": "10m"}))
	c := newClient(t, 10*time.Second)

	warm := send(c, gw.URL, testutil.CanaryToken, messageBody(300, false), nil)
	if warm.status != 200 {
		t.Fatalf("warm-up request: %d %v %s", warm.status, warm.err, warm.body)
	}
	// The reserve script carries the hold's amount as an argument: a
	// max_tokens of its own makes it unique to the faulted request.
	body := messageBody(323, false)
	est := estimateOf(body, 323)
	relay.CutOn([]byte(fmt.Sprintf("\r\n%d\r\n", int64(est))))
	cutAt := time.Now()
	x := send(c, gw.URL, testutil.CanaryToken, body, nil)
	if relay.Cuts() != 1 {
		t.Fatalf("the reserve never reached the relay's cut (status %d %s)", x.status, x.body)
	}
	if x.status != 503 || !strings.Contains(x.body, `"api_error"`) {
		t.Errorf("faulted request: got %d %s, want 503 api_error", x.status, x.body)
	}
	// The fault bit: Redis holds the faulted request's live hold.
	if !liveHold(t, rd, est) {
		t.Fatalf("no live hold of %s in Redis after the cut: the script did not run", est)
	}
	time.Sleep(300 * time.Millisecond)
	relay.Reopen()
	reopenAt := time.Now()

	acc := settleAccounting(t, f, gw.AdminURL, func() string { return gw.Spend.String() }, 0, est)
	r.Load = fmt.Sprintf("2 sequential req (%s)", statusCounts([]reply{warm, x}))
	r.Faults = fmt.Sprintf("reserve's reply dropped, Redis unreachable for %s", ms(reopenAt.Sub(cutAt)))
	acc.fill(r)
	m := scrape(t, gw.AdminURL)
	r.Leaks = fmt.Sprint(leaks(gw.Logs.String(), gw.Spend.String(), m, x.body))
	if acc.settled {
		r.Recovery = ms(acc.settledAt.Sub(reopenAt)) + " from reconnect to hold released"
	}
	if f.Messages() != 1 {
		t.Errorf("upstream answered %d messages, want only the warm-up", f.Messages())
	}
	acc.assert(t)
	if r.Leaks != "0" {
		t.Errorf("%s canary hits", r.Leaks)
	}
}

// liveHold reports whether Redis has a live hold of amount amt.
func liveHold(t *testing.T, rd *testutil.Redis, amt money.Nanos) bool {
	t.Helper()
	c := rd.Client()
	keys, err := c.Keys(t.Context(), "*:hold:*").Result()
	if err != nil {
		t.Fatalf("redis KEYS: %v", err)
	}
	for _, k := range keys {
		h, err := c.HGetAll(t.Context(), k).Result()
		if err != nil {
			t.Fatalf("redis HGETALL %s: %v", k, err)
		}
		if h["state"] == "live" && h["amt"] == fmt.Sprint(int64(amt)) {
			return true
		}
	}
	return false
}
