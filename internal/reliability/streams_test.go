package reliability

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// streamMaxTokens is the max_tokens of the stream cases. It is below the
// bytes of any one content_block_delta event, so the interrupted-stream
// rule (output = max(output seen, min(max_tokens, delta bytes streamed)))
// gives exactly max_tokens as soon as one delta has passed the gateway.
const streamMaxTokens = 5

// interruptedCost is what an interrupted stream of the fake's default usage
// is charged: input from message_start (1,200 tokens) plus max_tokens of
// output.
const interruptedCost = 1200*inputNanos + streamMaxTokens*outputNanos // 3,675,000

// streamCase is one way a stream can end early.
type streamCase struct {
	name      string
	behave    fakeupstream.Behavior
	run       func(t *testing.T, c *http.Client, url, body string) (seen string)
	want      money.Nanos // the charge by the documented rule
	chargedBy string      // the spend log's charged_by
}

// Scenario 6: streams that end early are each charged exactly once by the
// documented rule, the gateway logs no panic, and once it has stopped it
// leaves no goroutine behind. The cases run against the embedded store and
// against Redis, each with its own gateway.
func TestReliabilityStreamFaults(t *testing.T) {
	r := newRow(t, "6. Streams end early: client gone, upstream cut, error event, upstream timeout")
	leakBase := goleak.IgnoreCurrent() // whatever earlier tests left running is not this test's leak
	var unmetered, doubles, leaked int
	var drift money.Nanos
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			redisURL := ""
			if store == "redis" {
				redisURL = startRedis(t).URL()
			}
			fig := streamFaults(t, redisURL)
			unmetered += fig.unmetered
			doubles += fig.doubles
			leaked += fig.leaks
			drift += fig.drift
		})
	}
	// Redis and the fake upstreams were stopped by the subtests' cleanups;
	// the gateways by streamFaults itself.
	http.DefaultClient.CloseIdleConnections() // StartApp polled /readyz with it
	goleak.VerifyNone(t, leakBase)

	r.Load = "4 streams per store (embedded, Redis)"
	r.Faults = "client hang-up after 1st delta; upstream cut mid-event; error event after 200; upstream hang + 500ms client timeout"
	r.Unmetered = fmt.Sprint(unmetered)
	r.Drift = nanos(drift) + " (vs the interrupted-stream rule; no response completed)"
	r.Double = fmt.Sprint(doubles)
	r.Leaks = fmt.Sprint(leaked)
	r.Recovery = "n/a; goleak clean, 0 panics"
}

type streamFigures struct {
	unmetered, doubles, leaks int
	drift                     money.Nanos
}

func streamFaults(t *testing.T, redisURL string) streamFigures {
	f := fakeupstream.New(testutil.CanaryKey)
	up := httptest.NewServer(f)
	t.Cleanup(up.Close)
	body := messageBody(streamMaxTokens, true)
	cases := []streamCase{
		{name: "client disconnects mid-stream",
			behave: fakeupstream.Behavior{EventSpacing: 100 * time.Millisecond, Text: strings.Split("one two three four five six seven eight", " ")},
			run:    readThenHangUp, want: interruptedCost, chargedBy: "interrupted_stream"},
		{name: "upstream cuts mid-event",
			behave: fakeupstream.Behavior{CutAfterEvents: 5},
			run:    readAll, want: interruptedCost, chargedBy: "interrupted_stream"},
		{name: "upstream error event after 200",
			behave: fakeupstream.Behavior{ErrorAfterEvents: 4},
			run:    readAll, want: interruptedCost, chargedBy: "interrupted_stream"},
		{name: "upstream never answers, client times out",
			behave: fakeupstream.Behavior{Hang: true},
			run:    timeOut, want: estimateOf(body, streamMaxTokens), chargedBy: "upstream_failed"},
	}
	f.Behave = func(req *http.Request, _ string, _ bool) fakeupstream.Behavior {
		for _, tc := range cases {
			if req.Header.Get("X-Test-Case") == tc.name {
				b := tc.behave
				b.Usage = fakeupstream.Usage{InputTokens: 1200, OutputTokens: 300}
				return b
			}
		}
		return fakeupstream.Behavior{Status: 400}
	}

	gw := testutil.StartApp(t, gatewayEnv(t, up.URL, policySpec{}, redisURL, nil))
	c := &http.Client{Transport: &http.Transport{}}
	var want money.Nanos
	var seen strings.Builder
	for i, tc := range cases {
		seen.WriteString(tc.run(t, c, gw.URL, tc.name))
		want += tc.want
		lv, ok := waitBudget(t, gw.AdminURL, 10*time.Second, func(l budgetLevel) bool { return l.Spent == want && l.Reserved == 0 })
		if !ok {
			t.Errorf("%s: store spent %s reserved %s, want spent %s (this case %s) and nothing reserved", tc.name, lv.Spent, lv.Reserved, want, tc.want)
		}
		recs := spendRecords(t, gw.Spend.String())
		if len(recs) != i+1 {
			t.Fatalf("%s: %d spend records after %d requests", tc.name, len(recs), i+1)
		}
		if last := recs[i]; last.TotalUSD != tc.want.String() || last.ChargedBy != tc.chargedBy {
			t.Errorf("%s: spend record %s charged_by %q, want %s by %q", tc.name, last.TotalUSD, last.ChargedBy, tc.want, tc.chargedBy)
		}
	}
	// Anything still due would show up now: a second settlement of any
	// request would move the store past want.
	time.Sleep(300 * time.Millisecond)
	final, _ := serviceBudget(gw.AdminURL)
	recs := spendRecords(t, gw.Spend.String())
	m := scrape(t, gw.AdminURL)
	upstreamCalls := 0
	for _, s := range f.Requests() {
		if s.Path == "/v1/messages" {
			upstreamCalls++
		}
	}
	if err := gw.Stop(); err != nil {
		t.Errorf("gateway stopped with %v", err)
	}
	up.Close()
	c.CloseIdleConnections()
	logs := gw.Logs.String()
	assertNoPanic(t, "gateway logs", logs)

	fig := streamFigures{unmetered: upstreamCalls - len(recs), doubles: doubleCharges(recs),
		leaks: leaks(logs, gw.Spend.String(), m, seen.String()), drift: final.Spent - want}
	if fig != (streamFigures{}) {
		t.Errorf("upstream calls %d, spend records %d, double %d, final spent %s (want %s), leaks %d",
			upstreamCalls, len(recs), fig.doubles, final.Spent, want, fig.leaks)
	}
	return fig
}

func streamRequest(ctx context.Context, url, body, name string) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/messages", strings.NewReader(body))
	req.Header.Set("x-api-key", testutil.CanaryToken)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("content-type", "application/json")
	req.Header.Set("X-Test-Case", name)
	return req
}

// readThenHangUp reads the stream until its first content delta has
// arrived, then goes away.
func readThenHangUp(t *testing.T, c *http.Client, url, name string) string {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := c.Do(streamRequest(ctx, url, messageBody(streamMaxTokens, true), name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: status %d", name, resp.StatusCode)
	}
	var seen strings.Builder
	br := bufio.NewReader(resp.Body)
	delta := false
	for {
		line, err := br.ReadString('\n')
		seen.WriteString(line)
		if err != nil {
			t.Fatalf("%s: stream ended before the first delta: %v", name, err)
		}
		if strings.HasPrefix(line, "event: content_block_delta") {
			delta = true
		}
		if delta && line == "\n" {
			return seen.String() // the whole delta event arrived: hang up
		}
	}
}

// readAll reads the whole response, which the upstream ends early.
func readAll(t *testing.T, c *http.Client, url, name string) string {
	resp, err := c.Do(streamRequest(context.Background(), url, messageBody(streamMaxTokens, true), name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Errorf("%s: status %d", name, resp.StatusCode)
	}
	switch {
	case strings.Contains(name, "cut") && err == nil:
		t.Errorf("%s: the client read a clean end of stream; a cut upstream must abort the client's stream too", name)
	case strings.Contains(name, "error event") && !strings.Contains(string(b), "event: error"):
		t.Errorf("%s: the error event did not reach the client: %s", name, b)
	}
	if strings.Contains(string(b), "message_stop") {
		t.Errorf("%s: the stream was not cut short", name)
	}
	return string(b)
}

// timeOut sends a request the upstream never answers and gives up.
func timeOut(t *testing.T, c *http.Client, url, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	resp, err := c.Do(streamRequest(ctx, url, messageBody(streamMaxTokens, true), name))
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Errorf("%s: got an answer (%d %s) from a hanging upstream", name, resp.StatusCode, b)
		return string(b)
	}
	return ""
}
