package reliability

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// Scenario 4: Redis is paused (SIGSTOP: connections are accepted, nothing
// is answered) for longer than CLADE_STORE_TIMEOUT. Requests must not hang:
// each is refused with 503 and Retry-After once the store timeout passes,
// nothing reaches the upstream unreserved, and when Redis resumes the
// commands it finally runs (reserves whose callers gave up, and their
// releases) leave the books exact.
func TestReliabilityRedisPaused(t *testing.T) {
	r := newRow(t, "4. Redis paused (SIGSTOP) past the 200ms store timeout (reject)")
	const storeTimeout = 200 * time.Millisecond
	rd := startRedis(t)
	f, up := startUpstream(t)
	body := messageBody(300, false)
	gw := testutil.StartApp(t, gatewayEnv(t, up.URL, policySpec{}, rd.URL(), map[string]string{
		"CLADE_STORE_TIMEOUT": storeTimeout.String(),
		"CLADE_HOLD_TTL":      "2s", // holds placed after the callers gave up expire within the test
	}))
	c := newClient(t, 30*time.Second)

	ld := startLoad(c, gw.URL, testutil.CanaryToken, body, 4, 300, 20*time.Millisecond)
	pauseAt, resumeAt, replies := faultUnderLoad(t, ld, 300*time.Millisecond, 1500*time.Millisecond, rd.Pause, rd.Continue)

	var paused []time.Duration // latencies of requests that ran wholly inside the pause
	var refusals int
	var bodies strings.Builder
	firstOK := time.Time{}
	for _, x := range replies {
		bodies.WriteString(x.body)
		inside := x.start.After(pauseAt) && x.end.Before(resumeAt)
		switch {
		case x.err != nil:
			t.Errorf("request failed at the transport after %v: %v", x.latency(), x.err)
		case x.status == 200:
			if inside {
				t.Errorf("a request was admitted while Redis was paused (%v)", x.latency())
			}
			if x.start.After(pauseAt) && (firstOK.IsZero() || x.end.Before(firstOK)) {
				firstOK = x.end
			}
		case x.status == 503:
			refusals++
			if x.retryAfter == "" {
				t.Errorf("503 without Retry-After: %s", x.body)
			}
		default:
			t.Errorf("unexpected status %d: %s", x.status, x.body)
		}
		if inside {
			paused = append(paused, x.latency())
		}
	}
	if len(paused) == 0 {
		t.Fatal("no request ran inside the pause: the fault did not bite")
	}
	sort.Slice(paused, func(i, j int) bool { return paused[i] < paused[j] })
	p50, worst := paused[len(paused)/2], paused[len(paused)-1]
	// Generous: one store timeout per store call on the request path, plus
	// scheduling on a loaded 2-core machine under -race. A hang would take
	// the whole pause (1.5s) or the client timeout (30s).
	if worst >= 5*time.Second {
		t.Errorf("slowest refusal during the pause took %v", worst)
	}
	if got := f.Messages(); got != int64(count(replies, func(x reply) bool { return x.status == 200 })) {
		t.Errorf("the upstream answered %d messages, clients got %d successes", got, count(replies, func(x reply) bool { return x.status == 200 }))
	}
	m := scrape(t, gw.AdminURL)
	if metricSum(m, "clade_gateway_store_errors_total", `op="reserve"`) == 0 {
		t.Error("clade_gateway_store_errors_total{op=reserve} did not count the timeouts")
	}
	acc := settleAccounting(t, f, gw.AdminURL, func() string { return gw.Spend.String() }, 0, estimateOf(body, 300))

	r.Load = fmt.Sprintf("4 workers, %d req (%s)", len(replies), statusCounts(replies))
	r.Faults = fmt.Sprintf("SIGSTOP Redis for %s; %d requests inside the pause: latency p50 %s, max %s (store timeout %s)",
		ms(resumeAt.Sub(pauseAt)), len(paused), ms(p50), ms(worst), storeTimeout)
	acc.fill(r)
	r.Leaks = fmt.Sprint(leaks(gw.Logs.String(), gw.Spend.String(), m, bodies.String()))
	if !firstOK.IsZero() {
		r.Recovery = ms(firstOK.Sub(resumeAt)) + " from SIGCONT to first 200"
	}
	acc.assert(t)
	if r.Leaks != "0" {
		t.Errorf("%s canary hits", r.Leaks)
	}
}
