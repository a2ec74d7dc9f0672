package reliability

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/journal"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// The embedded-store rows (5e, 7e, 2e) run the gateway as it ships with
// CLADE_REDIS_URL empty: a bbolt file in CLADE_DATA_DIR, with admission
// grants (CLADE_GRANT_WINDOW unset). Each restarts a process on the data
// dir its predecessor left.

// embeddedEnv is a gateway on the embedded store with grants as shipped.
func embeddedEnv(t *testing.T, upstream string) map[string]string {
	return gatewayEnv(t, upstream, policySpec{}, "", map[string]string{"CLADE_GRANT_WINDOW": ""})
}

// answerAfter makes every answer the default response, 30 ms after the
// request, so that requests are in flight whenever a signal lands.
func answerAfter(f *fakeupstream.Server) {
	f.Behave = func(*http.Request, string, bool) fakeupstream.Behavior {
		return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 1200, OutputTokens: 300}, TTFB: 30 * time.Millisecond}
	}
}

// embeddedLoad runs 4 workers on p until the first success, then for run
// more, and returns the load (still running).
func embeddedLoad(t *testing.T, c *http.Client, p *testutil.Process, body string, run time.Duration) *load {
	t.Helper()
	ld := startLoad(c, p.URL, testutil.CanaryToken, body, 4, 100_000, 5*time.Millisecond)
	if _, ok := ld.waitReply(t, 10*time.Second, func(x reply) bool { return x.status == 200 }); !ok {
		ld.stop()
		t.Fatal("no request succeeded through the gateway")
	}
	time.Sleep(run)
	return ld
}

// Scenario 5e: the gateway on the embedded store is SIGKILLed under load.
// Its grant holds the estimates of its requests in flight and of those it
// settled in its last flush, and an unused slice; the next process on the
// same data dir charges that grant in full when it opens the file (one
// process has it at a time), so spend covers everything the upstream
// answered, never less, and exceeds it by no more than the grant could
// hold. The next process then charges its own requests exactly.
func TestReliabilityEmbeddedKilledMidLoad(t *testing.T) {
	r := newRow(t, "5e. Embedded store with grants: gateway SIGKILLed mid-load, restarted on its data dir")
	f, up := startUpstream(t)
	answerAfter(f)
	bin := testutil.BuildBinary(t)
	a := testutil.StartProcess(t, bin, embeddedEnv(t, up.URL))
	c := newClient(t, 10*time.Second)
	const maxTokens = 1000
	body := messageBody(maxTokens, false)
	est := estimateOf(body, maxTokens)

	ld := embeddedLoad(t, c, a, body, time.Second)
	killAt := time.Now()
	a.Kill()
	replies := ld.stop()

	b := testutil.StartProcess(t, bin, a.Env)
	restartedAfter := time.Since(killAt)
	lv, err := serviceBudget(b.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	if lv.Reserved != 0 {
		t.Errorf("reserved %s after the restart: the killed process's grant still holds budget", lv.Reserved)
	}
	truth := truthCost(f)
	over := lv.Spent - truth
	if over < 0 {
		t.Errorf("spent %s is below what the upstream answered (%s): undercounted", lv.Spent, truth)
	}
	// The most a grant holds beyond its requests' actual costs: an unused
	// slice of 16 estimates (the floor at this rate), the estimates of the
	// 4 requests in flight, which the upstream never completed, and those
	// of the requests settled in the last flush (at most one per worker),
	// counted at their estimates instead of their actual costs.
	if bound := 24 * est; over > bound {
		t.Errorf("spent exceeds the truth by %s, more than a grant's %s", over, bound)
	}
	recsA := spendRecords(t, a.Spend.String())
	for _, rec := range recsA {
		if rec.TotalUSD != money.Nanos(defaultCost).String() {
			t.Errorf("charged %s for a default response", rec.TotalUSD)
		}
	}

	// The next process admits and charges its own requests exactly.
	const after = 20
	for i := range after {
		if x := send(c, b.URL, testutil.CanaryToken, body, nil); x.status != 200 {
			t.Fatalf("request %d after the restart: %d %v %s", i, x.status, x.err, x.body)
		}
	}
	if err := b.Stop(); err != nil {
		t.Errorf("restarted gateway: %v", err)
	}
	next := testutil.StartProcess(t, bin, a.Env)
	final, err := serviceBudget(next.AdminURL)
	if want := lv.Spent + after*defaultCost; err != nil || final.Spent != want || final.Reserved != 0 {
		t.Errorf("after %d more requests and a SIGTERM: %+v, %v; want spent %s and nothing reserved", after, final, err, want)
	}
	recs := append(recsA, spendRecords(t, b.Spend.String())...)
	ok200 := count(replies, func(x reply) bool { return x.status == 200 })

	r.Load = fmt.Sprintf("4 workers, %d req before the kill (%s), %d after the restart", len(replies), statusCounts(replies), after)
	r.Faults = fmt.Sprintf("SIGKILL under load; %d answered by the upstream, %d settled before the kill", f.Messages()-after, len(recsA))
	r.Unmetered = "0 (spend ≥ what the upstream answered)"
	r.Drift = fmt.Sprintf("%s (vs rule: grant charged in full at restart; %.1f estimates over the truth, bound 24; then exact)", nanos(over), float64(over)/float64(est))
	r.Double = fmt.Sprint(doubleCharges(recs))
	r.Leaks = fmt.Sprint(leaks(a.Logs.String(), a.Spend.String(), b.Logs.String(), b.Spend.String(), scrape(t, next.AdminURL)))
	r.Recovery = ms(restartedAfter) + " kill to the next process ready, the grant charged"
	if ok200 == 0 || r.Double != "0" || r.Leaks != "0" {
		t.Errorf("%d successes, double %s, leaks %s", ok200, r.Double, r.Leaks)
	}
	assertNoPanic(t, "restarted gateway logs", b.Logs.String())
}

// Scenario 7e: SIGTERM reaches the gateway on the embedded store under
// load. Requests in flight finish, the grant charges them and returns its
// unused slice, and the next process on the data dir sees spend equal to
// what the upstream answered, to the nano-dollar, with nothing reserved.
func TestReliabilityEmbeddedSIGTERMIsExact(t *testing.T) {
	r := newRow(t, "7e. Embedded store with grants: SIGTERM under load, restarted on its data dir")
	f, up := startUpstream(t)
	answerAfter(f)
	bin := testutil.BuildBinary(t)
	a := testutil.StartProcess(t, bin, embeddedEnv(t, up.URL))
	c := newClient(t, 10*time.Second)
	body := messageBody(1000, false)

	ld := embeddedLoad(t, c, a, body, time.Second)
	termAt := time.Now()
	stopErr := a.Stop()
	exitAfter := time.Since(termAt)
	replies := ld.stop()
	if stopErr != nil {
		t.Errorf("gateway exited with %v, want status 0", stopErr)
	}

	b := testutil.StartProcess(t, bin, a.Env)
	lv, err := serviceBudget(b.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	truth := truthCost(f)
	if lv.Spent != truth || lv.Reserved != 0 {
		t.Errorf("after SIGTERM and a restart: spent %s reserved %s; want %s (what the upstream answered) and 0", lv.Spent, lv.Reserved, truth)
	}
	recs := spendRecords(t, a.Spend.String())
	for _, rec := range recs {
		if rec.TotalUSD != money.Nanos(defaultCost).String() {
			t.Errorf("charged %s for a default response", rec.TotalUSD)
		}
	}
	if strings.Contains(a.Logs.String(), "journaled") {
		t.Error("the grant was journaled at a clean shutdown")
	}

	r.Load = fmt.Sprintf("4 workers, %d req (%s)", len(replies), statusCounts(replies))
	r.Faults = "SIGTERM under load, requests in flight"
	r.Unmetered = fmt.Sprint(f.Messages() - int64(len(recs)))
	r.Drift = nanos(lv.Spent - truth)
	r.Double = fmt.Sprint(doubleCharges(recs))
	r.Leaks = fmt.Sprint(leaks(a.Logs.String(), a.Spend.String(), b.Logs.String(), scrape(t, b.AdminURL)))
	r.Recovery = ms(exitAfter) + " SIGTERM to exit 0"
	if r.Unmetered != "0" || r.Double != "0" || r.Leaks != "0" {
		t.Errorf("unmetered %s, double %s, leaks %s", r.Unmetered, r.Double, r.Leaks)
	}
}

// Scenario 2e: a gateway on the embedded store is SIGKILLed, leaving its
// grant in the store file and settlements in its journal (what the store
// refused to take: the embedded store has no outage to provoke, so they
// are written with the journal's own API, one of them twice, as after a
// crash between settling an entry and deleting it). The next process on
// the data dir charges the grant when it opens the file and replays the
// journal: every entry is charged once, and a further restart changes
// nothing.
func TestReliabilityEmbeddedRestartReplaysTheJournal(t *testing.T) {
	r := newRow(t, "2e. Embedded store with grants: restart on a data dir with a journal (after SIGKILL)")
	f, up := startUpstream(t)
	answerAfter(f)
	bin := testutil.BuildBinary(t)
	a := testutil.StartProcess(t, bin, embeddedEnv(t, up.URL))
	c := newClient(t, 10*time.Second)
	body := messageBody(1000, false)
	replies := embeddedLoad(t, c, a, body, 500*time.Millisecond).stop()
	a.Kill()

	// What the next process will find in the store: spend with the killed
	// process's grant charged (opening the file charges it).
	st, err := boltstore.Open(filepath.Join(a.Dir, "budgets.db"), storeopts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc := budget.Budget{Scope: budget.ScopeService, Name: "recommendation", ID: "total", Period: budget.Total, Enforce: true}
	team := budget.Budget{Scope: budget.ScopeTeam, Name: "search", ID: "total", Period: budget.Total, Enforce: true}
	levels, err := st.Status(t.Context(), []budget.Budget{svc})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	before := levels[0].Spent
	if levels[0].Reserved != 0 {
		t.Errorf("reserved %s once the file was reopened: the killed process's grant was not charged", levels[0].Reserved)
	}

	const journaled = 5
	j, err := journal.Open(filepath.Join(a.Dir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{svc.Key(time.Now()), team.Key(time.Now())}
	for i := range journaled + 1 {
		id := "journaled-" + strconv.Itoa(i%journaled) // the last one repeats the first
		if err := j.Append(budget.Reservation{RequestID: id, Keys: keys}, defaultCost); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	startAt := time.Now()
	b := testutil.StartProcess(t, bin, a.Env)
	want := before + journaled*defaultCost
	mb := waitMetric(t, b.AdminURL, 10*time.Second, func(m string) bool {
		return strings.Contains(m, "clade_gateway_journal_entries 0")
	})
	drained := time.Since(startAt)
	lv, ok := waitBudget(t, b.AdminURL, 5*time.Second, func(l budgetLevel) bool { return l.Spent == want && l.Reserved == 0 })
	if !ok {
		t.Errorf("after the replay: spent %s reserved %s, want %s (%d journaled settlements once each) and 0", lv.Spent, lv.Reserved, want, journaled)
	}
	if err := b.Stop(); err != nil {
		t.Errorf("gateway after the replay: %v", err)
	}
	next := testutil.StartProcess(t, bin, a.Env)
	again, err := serviceBudget(next.AdminURL)
	if err != nil || again.Spent != want || again.Reserved != 0 {
		t.Errorf("after one more restart: %+v, %v; want spent %s and 0 reserved", again, err, want)
	}
	truth := truthCost(f) + journaled*defaultCost
	recs := spendRecords(t, a.Spend.String())

	r.Load = fmt.Sprintf("4 workers, %d req (%s), then SIGKILL", len(replies), statusCounts(replies))
	r.Faults = fmt.Sprintf("journal of %d settlements (one entry twice) left with the killed process's grant; 2 restarts", journaled)
	r.Unmetered = "0 (spend ≥ what the upstream answered)"
	r.Drift = fmt.Sprintf("%s (vs rule: grant charged in full at restart; journal exact)", nanos(lv.Spent-truth))
	r.Double = fmt.Sprint(doubleCharges(recs))
	r.Leaks = fmt.Sprint(leaks(a.Logs.String(), a.Spend.String(), b.Logs.String(), b.Spend.String(), mb))
	r.Recovery = ms(drained) + " from restart to the journal replayed"
	if lv.Spent < truth || r.Double != "0" || r.Leaks != "0" {
		t.Errorf("spent %s (truth %s), double %s, leaks %s", lv.Spent, truth, r.Double, r.Leaks)
	}
}
