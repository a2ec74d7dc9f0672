package reliability

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// Scenario 1g: scenario 1 with admission grants on (CLADE_GRANT_WINDOW),
// and an outage longer than the grant's lease. While Redis is gone the
// gateway may keep admitting from its grant, which Redis reserved, until
// the lease has less than a third to run; then it refuses with 503. The
// lease ends inside the outage, so when Redis returns the grant is charged
// in full as an orphan, and the gateway's resent and later steps must
// correct that charge to exactly what the upstream answered.
func TestReliabilityRedisKilledWithGrants(t *testing.T) {
	r := newRow(t, "1g. Redis SIGKILLed past the grant's lease, restarted (reject, grants)")
	rd := startRedis(t, persistent...)
	f, up := startUpstream(t)
	const lease = time.Second
	gw := testutil.StartApp(t, gatewayEnv(t, up.URL, policySpec{}, rd.URL(),
		map[string]string{"CLADE_GRANT_WINDOW": "100ms", "CLADE_HOLD_TTL": lease.String()}))
	c := newClient(t, 10*time.Second)
	body := messageBody(16, false)

	ld := startLoad(c, gw.URL, testutil.CanaryToken, body, 4, 400, 10*time.Millisecond)
	killAt, restartAt, replies := faultUnderLoad(t, ld, 400*time.Millisecond, 2*lease, rd.Kill, rd.Restart)

	var refusals, fromGrant, lateAdmits int
	var bodies strings.Builder
	for _, x := range replies {
		bodies.WriteString(x.body)
		switch {
		case x.err != nil:
			t.Errorf("request failed at the transport: %v", x.err)
		case x.status == 200:
			if x.start.After(killAt) && x.end.Before(restartAt) {
				fromGrant++
				// Draws stop once the lease has less than a third to run.
				if x.start.Sub(killAt) > lease {
					lateAdmits++
				}
			}
		case x.status == 503:
			refusals++
			checkRefusal(t, x)
		default:
			t.Errorf("unexpected status %d: %s", x.status, x.body)
		}
	}
	if lateAdmits != 0 {
		t.Errorf("%d requests admitted more than a lease after Redis died", lateAdmits)
	}
	if refusals == 0 {
		t.Error("no request was refused: the outage did not outlast the grant")
	}
	ok200 := count(replies, func(x reply) bool { return x.status == 200 })
	if got := f.Messages(); got != int64(ok200) {
		t.Errorf("the upstream answered %d messages, clients got %d successes", got, ok200)
	}
	acc := settleAccounting(t, f, gw.AdminURL, func() string { return gw.Spend.String() }, 0, estimateOf(body, 16))
	m := scrape(t, gw.AdminURL)
	if orphans := metricSum(m, "clade_gateway_orphaned_holds_total"); orphans < 1 {
		t.Errorf("orphaned holds %v: the grant's lease did not end in the outage, the correction went untested", orphans)
	}

	r.Load = fmt.Sprintf("4 workers, %d req (%s)", len(replies), statusCounts(replies))
	r.Faults = fmt.Sprintf("Redis SIGKILL for %s, lease %s; %d admitted from the grant while down, then refused", ms(restartAt.Sub(killAt)), lease, fromGrant)
	acc.fill(r)
	r.Leaks = fmt.Sprint(leaks(gw.Logs.String(), gw.Spend.String(), m, bodies.String()))
	r.Recovery = ms(acc.settledAt.Sub(restartAt)) + " from redis-server start to the orphaned grant corrected"
	acc.assert(t)
	if r.Leaks != "0" {
		t.Errorf("%s canary hits", r.Leaks)
	}
}
