package reliability

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// Scenario 1: Redis is SIGKILLed under load and restarted (with its AOF, so
// it comes back with its data and epoch). In the default fail-closed mode
// no request may reach the upstream while Redis is gone, every refusal is a
// 503 with Retry-After, and afterwards the store holds exactly the cost of
// what the upstream answered.
func TestReliabilityRedisKilledFailClosed(t *testing.T) {
	r := newRow(t, "1. Redis SIGKILLed mid-load, restarted (reject)")
	rd := startRedis(t, persistent...)
	f, up := startUpstream(t)
	// A short lease, so that a hold stranded by the kill (see accounting)
	// expires and is charged within the test instead of after a minute.
	gw := testutil.StartApp(t, gatewayEnv(t, up.URL, policySpec{}, rd.URL(), map[string]string{"CLADE_HOLD_TTL": "2s"}))
	c := newClient(t, 10*time.Second)
	body := messageBody(300, false)

	ld := startLoad(c, gw.URL, testutil.CanaryToken, body, 4, 300, 20*time.Millisecond)
	killAt, restartAt, replies := faultUnderLoad(t, ld, 400*time.Millisecond, time.Second, rd.Kill, rd.Restart)

	var refusals, duringOutage, violations int
	var slowest time.Duration
	var bodies strings.Builder
	firstOK := time.Time{}
	for _, x := range replies {
		bodies.WriteString(x.body)
		switch {
		case x.err != nil:
			t.Errorf("request failed at the transport: %v", x.err)
		case x.status == 200:
			if x.start.After(killAt) && x.end.Before(restartAt) {
				violations++ // admitted while Redis was dead
			}
			if x.start.After(killAt) && (firstOK.IsZero() || x.end.Before(firstOK)) {
				firstOK = x.end
			}
		case x.status == 503:
			refusals++
			slowest = max(slowest, x.latency())
			checkRefusal(t, x)
			if x.start.After(killAt) && x.end.Before(restartAt) {
				duringOutage++
			}
		default:
			t.Errorf("unexpected status %d: %s", x.status, x.body)
		}
	}
	if violations != 0 {
		t.Errorf("%d requests were answered 200 although they started and ended while Redis was dead", violations)
	}
	if duringOutage == 0 {
		t.Error("no request was refused during the outage: the fault did not bite")
	}
	ok200 := count(replies, func(x reply) bool { return x.status == 200 })
	if got := f.Messages(); got != int64(ok200) {
		t.Errorf("the upstream answered %d messages, clients got %d successes", got, ok200)
	}
	m := scrape(t, gw.AdminURL)
	if got := metricSum(m, "clade_gateway_rejected_total", `reason="store_unavailable"`); got != float64(refusals) {
		t.Errorf("clade_gateway_rejected_total{reason=store_unavailable} = %v, clients saw %d refusals", got, refusals)
	}
	acc := settleAccounting(t, f, gw.AdminURL, func() string { return gw.Spend.String() }, 0, estimateOf(body, 300))

	r.Load = fmt.Sprintf("4 workers, %d req (%s)", len(replies), statusCounts(replies))
	r.Faults = fmt.Sprintf("Redis SIGKILL for %s, restart with AOF; %d refused while down (slowest 503: %s)",
		ms(restartAt.Sub(killAt)), duringOutage, ms(slowest))
	acc.fill(r)
	r.Leaks = fmt.Sprint(leaks(gw.Logs.String(), gw.Spend.String(), m, bodies.String()))
	if !firstOK.IsZero() {
		r.Recovery = ms(firstOK.Sub(restartAt)) + " from redis-server start to first 200"
	}
	acc.assert(t)
	if r.Leaks != "0" {
		t.Errorf("%s canary hits", r.Leaks)
	}
}

// Scenario 2: the same fault with on_store_failure: allow. Requests keep
// flowing without reservations, their settlements go to the durable
// journal, and when Redis returns the journal is replayed: the store then
// holds exactly the upstream's ground truth.
func TestReliabilityRedisKilledFailOpen(t *testing.T) {
	r := newRow(t, "2a. Redis SIGKILLed mid-load, restarted (allow)")
	rd := startRedis(t, persistent...)
	f, up := startUpstream(t)
	gw := testutil.StartApp(t, gatewayEnv(t, up.URL, policySpec{OnStoreFailure: "allow"}, rd.URL(), nil))
	c := newClient(t, 10*time.Second)

	ld := startLoad(c, gw.URL, testutil.CanaryToken, messageBody(300, false), 3, 300, 25*time.Millisecond)
	if _, ok := ld.waitReply(t, 10*time.Second, func(x reply) bool { return x.status == 200 }); !ok {
		ld.stop()
		t.Fatal("no request succeeded before the fault")
	}
	time.Sleep(400 * time.Millisecond)
	killAt := time.Now()
	rd.Kill()
	time.Sleep(time.Second)
	replies := ld.stop()
	outage := count(replies, func(x reply) bool { return x.start.After(killAt) })
	// Settlements run after each response; each waits out the store
	// timeout before it is journaled.
	m := waitMetric(t, gw.AdminURL, 10*time.Second, func(m string) bool {
		return metricSum(m, "clade_gateway_settle_failures_total", `result="journaled"`) >= float64(outage)
	})
	restartAt := time.Now()
	rd.Restart()

	var bodies strings.Builder
	for _, x := range replies {
		bodies.WriteString(x.body)
		if x.err != nil || x.status != 200 {
			t.Errorf("allow mode: status %d err %v body %s", x.status, x.err, x.body)
		}
	}
	if outage == 0 {
		t.Error("no request ran during the outage: the fault did not bite")
	}
	unreserved := metricSum(m, "clade_gateway_unreserved_forwards_total")
	journaled := metricSum(m, "clade_gateway_settle_failures_total", `result="journaled"`)
	if unreserved < float64(outage) || journaled < float64(outage) {
		t.Errorf("%d requests ran during the outage, but unreserved forwards = %v and journaled settlements = %v", outage, unreserved, journaled)
	}
	if lost := metricSum(m, "clade_gateway_settle_failures_total", `result="lost"`); lost != 0 {
		t.Errorf("%v settlements lost", lost)
	}
	if got := f.Messages(); got != int64(len(replies)) {
		t.Errorf("the upstream answered %d messages, clients sent %d", got, len(replies))
	}
	if queued := metricSum(m, "clade_gateway_journal_entries"); queued != journaled {
		t.Errorf("journal holds %v entries before Redis returns, %v settlements were journaled", queued, journaled)
	}
	acc := settleAccounting(t, f, gw.AdminURL, func() string { return gw.Spend.String() }, 0, 0)
	drained := waitMetric(t, gw.AdminURL, 5*time.Second, func(m string) bool { return metricSum(m, "clade_gateway_journal_entries") == 0 })
	if left := metricSum(drained, "clade_gateway_journal_entries"); left != 0 {
		t.Errorf("%v journal entries left after Redis returned", left)
	}

	r.Load = fmt.Sprintf("3 workers, %d req (%s)", len(replies), statusCounts(replies))
	r.Faults = fmt.Sprintf("Redis SIGKILL for %s, restart with AOF; %d forwarded unreserved, %v journaled", ms(restartAt.Sub(killAt)), outage, journaled)
	acc.fill(r)
	r.Leaks = fmt.Sprint(leaks(gw.Logs.String(), gw.Spend.String(), m, scrape(t, gw.AdminURL), bodies.String()))
	r.Recovery = ms(acc.settledAt.Sub(restartAt)) + " from redis-server start to journal replayed"
	acc.assert(t)
	if r.Leaks != "0" {
		t.Errorf("%s canary hits", r.Leaks)
	}
}

// Scenario 2b: as 2a, but the gateway itself restarts while Redis is still
// down. The new gateway starts without its store, serves (allow), opens
// the same journal, and replays the old process's entries with its own.
func TestReliabilityRedisKilledGatewayRestarts(t *testing.T) {
	redisKilledGatewayRestarts(t, newRow(t, "2b. Redis killed, gateway restarted before Redis returns (allow)"), "0")
}

// Scenario 2c: 2b with admission grants (the default with Redis). During
// the outage the first gateway admits from its grant and settles in
// memory; stopping, it cannot reach Redis, so it journals what the grant
// owes (settlements, unused amount). The second gateway replays that with
// the rest: spend ends exact, and nothing stays reserved until the
// grant's lease would have ended.
func TestReliabilityRedisKilledGatewayWithGrantsRestarts(t *testing.T) {
	redisKilledGatewayRestarts(t, newRow(t, "2c. Redis killed, gateway with grants restarted before Redis returns (allow)"), "100ms")
}

func redisKilledGatewayRestarts(t *testing.T, r *row, grantWindow string) {
	grants := grantWindow != "0"
	rd := startRedis(t, persistent...)
	f, up := startUpstream(t)
	env := gatewayEnv(t, up.URL, policySpec{OnStoreFailure: "allow"}, rd.URL(),
		map[string]string{"CLADE_DATA_DIR": t.TempDir(), "CLADE_GRANT_WINDOW": grantWindow})
	a := testutil.StartApp(t, env)
	c := newClient(t, 10*time.Second)
	body := messageBody(300, false)

	ld := startLoad(c, a.URL, testutil.CanaryToken, body, 3, 300, 25*time.Millisecond)
	if _, ok := ld.waitReply(t, 10*time.Second, func(x reply) bool { return x.status == 200 }); !ok {
		ld.stop()
		t.Fatal("no request succeeded before the fault")
	}
	time.Sleep(300 * time.Millisecond)
	killAt := time.Now()
	rd.Kill()
	time.Sleep(600 * time.Millisecond)
	replies := ld.stop()
	outageA := count(replies, func(x reply) bool { return x.start.After(killAt) })
	ma := scrape(t, a.AdminURL)
	stopAt := time.Now()
	if err := a.Stop(); err != nil { // waits for settlements still running, which journal
		t.Errorf("first gateway stopped with %v", err)
	}
	stopTook := time.Since(stopAt)
	ja := float64(strings.Count(a.Logs.String(), journaledMsg))
	ga := float64(strings.Count(a.Logs.String(), grantJournaledMsg))
	c.CloseIdleConnections()

	b := testutil.StartAppServing(t, env) // same CLADE_DATA_DIR: same journal and epoch file
	ld = startLoad(c, b.URL, testutil.CanaryToken, body, 3, 300, 25*time.Millisecond)
	time.Sleep(600 * time.Millisecond)
	onB := ld.stop()
	replies = append(replies, onB...)
	mb := waitMetric(t, b.AdminURL, 10*time.Second, func(m string) bool {
		return metricSum(m, "clade_gateway_settle_failures_total", `result="journaled"`) >= float64(len(onB))
	})
	restartAt := time.Now()
	rd.Restart()

	var bodies strings.Builder
	for _, x := range replies {
		bodies.WriteString(x.body)
		if x.err != nil || x.status != 200 {
			t.Errorf("allow mode: status %d err %v body %s", x.status, x.err, x.body)
		}
	}
	jb := metricSum(mb, "clade_gateway_settle_failures_total", `result="journaled"`)
	// Without grants every outage request is journaled; with them, those
	// drawn on the grant are settled in memory and journaled with it.
	if (!grants && ja < float64(outageA)) || (grants && (ja >= float64(outageA) || ga != 1)) ||
		jb != float64(len(onB)) || len(onB) == 0 {
		t.Errorf("journaled settlements: first gateway %v and %v grants (of %d outage requests), second %v (of %d requests)",
			ja, ga, outageA, jb, len(onB))
	}
	if !grants && ga != 0 {
		t.Errorf("the first gateway journaled %v grants without grants", ga)
	}
	if got := f.Messages(); got != int64(len(replies)) {
		t.Errorf("the upstream answered %d messages, clients sent %d", got, len(replies))
	}
	// The second gateway's journal holds the first one's entries too.
	if queued := metricSum(mb, "clade_gateway_journal_entries"); queued != ja+ga+jb {
		t.Errorf("second gateway's journal holds %v entries before Redis returns, want %v + %v + %v", queued, ja, ga, jb)
	}
	acc := settleAccounting(t, f, b.AdminURL, func() string { return a.Spend.String() + b.Spend.String() }, 0, 0)
	drained := waitMetric(t, b.AdminURL, 5*time.Second, func(m string) bool { return metricSum(m, "clade_gateway_journal_entries") == 0 })
	if left := metricSum(drained, "clade_gateway_journal_entries"); left != 0 {
		t.Errorf("%v journal entries left after Redis returned", left)
	}

	r.Load = fmt.Sprintf("3 workers on each gateway, %d req (%s)", len(replies), statusCounts(replies))
	r.Faults = fmt.Sprintf("Redis SIGKILL for %s; gateway stopped (in %s) and restarted on the same data dir meanwhile; journaled %v + %v",
		ms(restartAt.Sub(killAt)), ms(stopTook), ja, jb)
	if grants {
		r.Faults += fmt.Sprintf(", and %v grant (%d outage requests on the first gateway)", ga, outageA)
	}
	acc.fill(r)
	r.Leaks = fmt.Sprint(leaks(a.Logs.String(), a.Spend.String(), b.Logs.String(), b.Spend.String(), ma, mb, bodies.String()))
	r.Recovery = ms(acc.settledAt.Sub(restartAt)) + " from redis-server start to journal replayed"
	acc.assert(t)
	if r.Leaks != "0" {
		t.Errorf("%s canary hits", r.Leaks)
	}
}

// journaledMsg is the gateway's log message for a journaled settlement.
const journaledMsg = "settlement journaled for replay"

// grantJournaledMsg is its log message for a grant journaled at shutdown.
const grantJournaledMsg = "budget grant journaled"

// accounting compares what was charged with what the upstream answered.
type accounting struct {
	messages  int64       // upstream's answered Messages requests
	records   int         // spend-log records
	doubles   int         // request IDs with more than one record
	truth     money.Nanos // exact cost of the upstream's complete responses
	logged    money.Nanos // sum of the spend log
	store     budgetLevel // the store's final level
	settled   bool        // the store reached its expected level with no holds left
	settledAt time.Time
	// stranded is how many refused requests may each be charged their
	// estimate est. A reserve that ran in Redis after its caller gave up
	// leaves a hold nobody settles; the proxy journals a zero settlement
	// for every refusal the store timed out on, so the scenarios expect 0:
	// without that release the lease would expire into an orphan charge.
	stranded int
	est      money.Nanos
}

// settleAccounting waits (bounded) until the spend log has a record for
// every upstream answer and the store's spend equals the ground truth with
// no live holds (give or take stranded holds, see accounting), then returns
// the figures. Every response in these scenarios is complete, so ground
// truth is exact.
func settleAccounting(t *testing.T, f *fakeupstream.Server, adminURL string, spend func() string, stranded int, est money.Nanos) accounting {
	t.Helper()
	a := accounting{messages: f.Messages(), truth: truthCost(f), stranded: stranded, est: est}
	if tr := f.Truth(); tr["responses"] != a.messages || a.truth != money.Nanos(a.messages)*defaultCost {
		t.Errorf("ground truth %v does not match %d complete default responses", tr, a.messages)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.records = len(spendRecords(t, spend()))
		if int64(a.records) >= a.messages || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	recs := spendRecords(t, spend())
	a.records, a.doubles, a.logged = len(recs), doubleCharges(recs), sumSpend(t, recs)
	a.store, a.settled = waitBudget(t, adminURL, 20*time.Second, a.expected)
	a.settledAt = time.Now()
	return a
}

// expected reports whether l is a level the scenario allows: nothing
// reserved, and spent equal to ground truth plus at most a.stranded whole
// estimates.
func (a accounting) expected(l budgetLevel) bool {
	extra := l.Spent - a.truth
	if l.Reserved != 0 || extra < 0 {
		return false
	}
	if extra == 0 {
		return true
	}
	return a.est > 0 && extra%a.est == 0 && int(extra/a.est) <= a.stranded
}

func (a accounting) fill(r *row) {
	r.Unmetered = fmt.Sprint(a.messages - int64(a.records))
	r.Drift = nanos(a.store.Spent - a.truth)
	if d := a.store.Spent - a.truth; d > 0 && a.est > 0 && d%a.est == 0 {
		r.Drift += fmt.Sprintf(" (%d refused request(s) charged their estimate: reserve ran, reply and release lost to the fault)", d/a.est)
	}
	r.Double = fmt.Sprint(a.doubles)
}

func (a accounting) assert(t *testing.T) {
	t.Helper()
	if a.messages != int64(a.records) {
		t.Errorf("upstream answered %d messages, spend log has %d records: %d unmetered", a.messages, a.records, a.messages-int64(a.records))
	}
	if a.doubles != 0 {
		t.Errorf("%d requests charged twice in the spend log", a.doubles)
	}
	if a.logged != a.truth {
		t.Errorf("spend log sums to %s, ground truth is %s", a.logged, a.truth)
	}
	if !a.settled {
		t.Errorf("store spent %s reserved %s, want spent = ground truth %s (+ at most %d stranded estimates of %s) and nothing reserved",
			a.store.Spent, a.store.Reserved, a.truth, a.stranded, a.est)
	}
}
