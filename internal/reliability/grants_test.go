package reliability

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/money"
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
	body := messageBody(300, false)

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
	acc := settleAccounting(t, f, gw.AdminURL, func() string { return gw.Spend.String() }, 0, estimateOf(body, 300))
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

// Scenario 5g: scenario 5 with admission grants (the default with Redis).
// Replica A is SIGKILLed while it streams and serves other requests; its
// grant holds the estimates of its requests in flight, of those it settled
// in its last 20 ms, and an unused slice. When the grant's lease ends it
// is charged in full as an orphan: spend must then cover everything the
// upstream answered (never less), and exceed it by no more than the grant
// could hold, while replica B admits throughout and is charged exactly.
func TestReliabilityReplicaWithGrantsKilled(t *testing.T) {
	r := newRow(t, "5g. Gateway replica with grants SIGKILLed mid-stream (2 processes, shared Redis)")
	const lease = 2 * time.Second
	rd := startRedis(t)
	f, up := startUpstream(t)
	slowStreams(f)
	bin := testutil.BuildBinary(t)
	env := gatewayEnv(t, up.URL, policySpec{}, rd.URL(), map[string]string{"CLADE_HOLD_TTL": lease.String(), "CLADE_GRANT_WINDOW": "100ms"})
	a := testutil.StartProcess(t, bin, env)
	b := testutil.StartProcess(t, bin, env)
	c := newClient(t, 30*time.Second)

	const maxTokens = 1000
	streamBody, quickBody := messageBody(maxTokens, true), messageBody(maxTokens, false)
	est := max(estimateOf(streamBody, maxTokens), estimateOf(quickBody, maxTokens))
	br := openStream(t, c, a.URL, streamBody)

	ldA := startLoad(c, a.URL, testutil.CanaryToken, quickBody, 1, 1000, 20*time.Millisecond)
	ldB := startLoad(c, b.URL, testutil.CanaryToken, quickBody, 1, 1000, 50*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	killAt := time.Now()
	a.Kill()
	ldA.stop()
	if rest, _ := io.ReadAll(br); strings.Contains(string(rest), "message_stop") {
		t.Error("the stream finished although its replica was killed")
	}
	mb := waitMetric(t, b.AdminURL, lease+5*time.Second, func(m string) bool {
		return metricSum(m, "clade_gateway_orphaned_holds_total") >= 1
	})
	chargedAfter := time.Since(killAt)
	if metricSum(mb, "clade_gateway_orphaned_holds_total") < 1 {
		t.Fatalf("A's grant was not charged as an orphan within %v of the kill", lease+5*time.Second)
	}
	time.Sleep(300 * time.Millisecond) // B keeps admitting after the charge too
	repliesB := ldB.stop()
	var bodies strings.Builder
	for _, x := range repliesB {
		bodies.WriteString(x.body)
		if x.status != 200 {
			t.Errorf("replica B: %d %v %s", x.status, x.err, x.body)
		}
	}
	if after := count(repliesB, func(x reply) bool { return x.start.After(killAt.Add(chargedAfter)) }); after == 0 {
		t.Error("replica B admitted nothing after A's grant was charged")
	}

	// B returns its own unused slice after a second without requests.
	final, ok := waitBudget(t, b.AdminURL, 10*time.Second, func(l budgetLevel) bool { return l.Reserved == 0 })
	if !ok {
		t.Fatalf("reserved %s left after B went idle", final.Reserved)
	}
	recsA, recsB := spendRecords(t, a.Spend.String()), spendRecords(t, b.Spend.String())
	for _, rec := range recsB {
		if rec.TotalUSD != money.Nanos(defaultCost).String() {
			t.Errorf("replica B charged %s for a default response", rec.TotalUSD)
		}
	}
	// Ground truth: every response the upstream completed at its exact
	// cost, and the interrupted stream at its estimate (scenario 5's rule).
	truth := truthCost(f) + estimateOf(streamBody, maxTokens)
	over := final.Spent - truth
	if over < 0 {
		t.Errorf("spent %s is below what the upstream answered (%s): undercounted", final.Spent, truth)
	}
	// The most a grant holds beyond its requests' actual costs: an unused
	// slice of 16 estimates (the floor at this rate), and the estimates of
	// requests in flight or settled in its last flush, counted as more.
	if bound := 20 * est; over > bound {
		t.Errorf("spent exceeds the truth by %s, more than a grant's %s", over, bound)
	}
	if d := doubleCharges(append(recsA, recsB...)); d != 0 {
		t.Errorf("%d double charges", d)
	}

	r.Load = fmt.Sprintf("1 stream and %d requests on A; %d req on B (%s)", len(recsA), len(repliesB), statusCounts(repliesB))
	r.Faults = fmt.Sprintf("SIGKILL replica A mid-stream with traffic; CLADE_HOLD_TTL %s", lease)
	r.Unmetered = "0 (spend ≥ what the upstream answered)"
	r.Drift = fmt.Sprintf("%s (vs rule: grant charged in full; %.1f estimates over the truth, bound 20)", nanos(over), float64(over)/float64(est))
	r.Double = "0"
	r.Leaks = fmt.Sprint(leaks(a.Logs.String(), a.Spend.String(), b.Logs.String(), b.Spend.String(), mb, bodies.String()))
	r.Recovery = ms(chargedAfter) + " kill to grant charged (B admitted throughout)"
	if r.Leaks != "0" {
		t.Errorf("%s canary hits", r.Leaks)
	}
	assertNoPanic(t, "replica B logs", b.Logs.String())
}
