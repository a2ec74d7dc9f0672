package reliability

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// Scenario 5: two gateway processes share Redis; one is SIGKILLed while it
// streams. Its hold stays visible to the other replica, expires within the
// lease (CLADE_HOLD_TTL), and is charged its estimate as an orphan, once;
// the surviving replica keeps admitting before, during and after.
func TestReliabilityReplicaKilledMidStream(t *testing.T) {
	r := newRow(t, "5. Gateway replica SIGKILLed mid-stream (2 processes, shared Redis)")
	const holdTTL = 2 * time.Second
	rd := startRedis(t)
	f, up := startUpstream(t)
	slowStreams(f)
	bin := testutil.BuildBinary(t)
	env := gatewayEnv(t, up.URL, policySpec{}, rd.URL(), map[string]string{"CLADE_HOLD_TTL": holdTTL.String()})
	a := testutil.StartProcess(t, bin, env)
	b := testutil.StartProcess(t, bin, env)
	c := newClient(t, 30*time.Second)

	const maxTokens = 1000
	streamBody := messageBody(maxTokens, true)
	est := estimateOf(streamBody, maxTokens)
	br := openStream(t, c, a.URL, streamBody)
	if lv, ok := waitBudget(t, b.AdminURL, 5*time.Second, func(l budgetLevel) bool { return l.Reserved == est }); !ok {
		t.Fatalf("replica B sees reserved %s, want A's hold %s", lv.Reserved, est)
	}

	ld := startLoad(c, b.URL, testutil.CanaryToken, messageBody(300, false), 1, 100, 100*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	killAt := time.Now()
	a.Kill()
	rest, _ := io.ReadAll(br)
	if strings.Contains(string(rest), "message_stop") {
		t.Error("the stream finished although its replica was killed")
	}
	held, _ := serviceBudget(b.AdminURL)
	lv, ok := waitBudget(t, b.AdminURL, holdTTL+5*time.Second, func(l budgetLevel) bool { return l.Reserved == 0 })
	expiredAfter := time.Since(killAt)
	if !ok {
		t.Errorf("A's hold did not expire within %v of the kill: %+v", holdTTL+5*time.Second, lv)
	}
	if held.Reserved < est {
		t.Errorf("right after the kill B sees reserved %s; A's hold of %s should outlive A until its lease ends", held.Reserved, est)
	}
	time.Sleep(500 * time.Millisecond) // B keeps admitting after the expiry too
	replies := ld.stop()
	var bodies strings.Builder
	for _, x := range replies {
		bodies.WriteString(x.body)
		if x.status != 200 {
			t.Errorf("replica B: %d %v %s", x.status, x.err, x.body)
		}
	}
	afterExpiry := count(replies, func(x reply) bool { return x.start.After(killAt.Add(expiredAfter)) })
	if afterExpiry == 0 {
		t.Error("replica B admitted nothing after the hold expired")
	}

	recsB := spendRecords(t, b.Spend.String())
	want := est + money.Nanos(len(recsB))*defaultCost // the orphan at its estimate, B's requests exactly
	final, ok := waitBudget(t, b.AdminURL, 5*time.Second, func(l budgetLevel) bool { return l.Spent == want && l.Reserved == 0 })
	if !ok {
		t.Errorf("store spent %s reserved %s, want the orphan's estimate %s plus %d × %s = %s",
			final.Spent, final.Reserved, est, len(recsB), money.Nanos(defaultCost), want)
	}
	mb := scrape(t, b.AdminURL)
	if metricSum(mb, "clade_gateway_orphaned_holds_total") < 1 {
		t.Error("replica B did not count the orphaned hold (clade_gateway_orphaned_holds_total)")
	}
	orphans := int64(0)
	if final.Spent >= money.Nanos(len(recsB))*defaultCost {
		orphans = int64((final.Spent - money.Nanos(len(recsB))*defaultCost) / est)
	}
	upstreamCalls := int64(0)
	for _, s := range f.Requests() {
		if s.Path == "/v1/messages" {
			upstreamCalls++
		}
	}

	r.Load = fmt.Sprintf("1 stream on A; %d req on B (%s), %d after the expiry", len(replies), statusCounts(replies), afterExpiry)
	r.Faults = fmt.Sprintf("SIGKILL replica A mid-stream; hold %s, CLADE_HOLD_TTL %s", est, holdTTL)
	r.Unmetered = fmt.Sprint(upstreamCalls - int64(len(recsB)) - orphans)
	r.Drift = nanos(final.Spent-want) + fmt.Sprintf(" (vs rule: orphan charged its estimate %s)", est)
	r.Double = fmt.Sprint(doubleCharges(recsB))
	r.Leaks = fmt.Sprint(leaks(a.Logs.String(), a.Spend.String(), b.Logs.String(), b.Spend.String(), mb, bodies.String()))
	r.Recovery = ms(expiredAfter) + " kill to hold expired (B admitted throughout)"
	if r.Unmetered != "0" || r.Double != "0" || r.Leaks != "0" {
		t.Errorf("unmetered %s, double %s, leaks %s", r.Unmetered, r.Double, r.Leaks)
	}
	assertNoPanic(t, "replica B logs", b.Logs.String())
}

// slowStreams makes the fake's streams long enough to outlive a kill and
// several keep-alives; other answers are the default response.
func slowStreams(f *fakeupstream.Server) {
	f.Behave = func(req *http.Request, _ string, stream bool) fakeupstream.Behavior {
		b := fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 1200, OutputTokens: 300}}
		if stream {
			b.EventSpacing = 200 * time.Millisecond
			b.Text = strings.Split(strings.Repeat("word ", 40), " ")
		}
		return b
	}
}

// openStream starts a stream through the gateway at url and returns it
// once its first text delta has arrived; the test's end closes it.
func openStream(t *testing.T, c *http.Client, url, body string) *bufio.Reader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/messages", strings.NewReader(body))
	req.Header.Set("x-api-key", testutil.CanaryToken)
	req.Header.Set("content-type", "application/json")
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream through %s: %v %v", url, err, resp)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before its first delta: %v", err)
		}
		if strings.HasPrefix(line, "event: content_block_delta") {
			return br
		}
	}
}
