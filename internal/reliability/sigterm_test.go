package reliability

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// Scenario 7: SIGTERM reaches a gateway process while streams are in
// flight. The streams finish within the shutdown grace, new connections
// are refused, every stream is settled before the process exits with
// status 0, and the spend is there for the next gateway to see.
func TestReliabilitySIGTERMDrainsStreams(t *testing.T) {
	r := newRow(t, "7. SIGTERM with streams in flight (real process)")
	const (
		streams = 5
		grace   = 10 * time.Second
	)
	rd := startRedis(t)
	f, up := startUpstream(t)
	f.Behave = func(*http.Request, string, bool) fakeupstream.Behavior {
		return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 1200, OutputTokens: 300},
			EventSpacing: 150 * time.Millisecond, Text: strings.Split("a b c d e f g h i j k l", " ")}
	}
	env := gatewayEnv(t, up.URL, policySpec{}, rd.URL(), map[string]string{"CLADE_SHUTDOWN_GRACE": grace.String()})
	p := testutil.StartProcess(t, testutil.BuildBinary(t), env)
	c := newClient(t, 30*time.Second)

	type result struct {
		status   int
		complete bool
		err      error
		body     string
	}
	results := make([]result, streams)
	started := make(chan struct{}, streams)
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, p.URL+"/v1/messages",
				strings.NewReader(messageBody(1024, true)))
			req.Header.Set("x-api-key", testutil.CanaryToken)
			req.Header.Set("content-type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				results[i].err = err
				started <- struct{}{}
				return
			}
			defer resp.Body.Close()
			results[i].status = resp.StatusCode
			var b strings.Builder
			br := bufio.NewReader(resp.Body)
			signalled := false
			for {
				line, err := br.ReadString('\n')
				b.WriteString(line)
				if !signalled && strings.HasPrefix(line, "event: content_block_delta") {
					started <- struct{}{}
					signalled = true
				}
				if err != nil {
					if err != io.EOF {
						results[i].err = err
					}
					break
				}
			}
			if !signalled {
				started <- struct{}{}
			}
			results[i].body = b.String()
			results[i].complete = strings.Contains(b.String(), "event: message_stop")
		}()
	}
	for range streams {
		<-started
	}

	termAt := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop() }() // SIGTERM, then wait for the exit
	time.Sleep(300 * time.Millisecond)
	late := send(c, p.URL, testutil.CanaryToken, messageBody(300, false), nil)
	if late.err == nil {
		t.Errorf("a new request was served (%d) after SIGTERM", late.status)
	}
	wg.Wait()
	exitErr := <-stopped
	exitAfter := time.Since(termAt)
	if exitErr != nil {
		t.Errorf("gateway exited with %v, want status 0", exitErr)
	}
	if exitAfter >= grace {
		t.Errorf("gateway took %v to exit, grace is %v", exitAfter, grace)
	}
	var bodies strings.Builder
	completed := 0
	for i, x := range results {
		bodies.WriteString(x.body)
		if x.err != nil || x.status != 200 || !x.complete {
			t.Errorf("stream %d: status %d complete %t err %v", i, x.status, x.complete, x.err)
		} else {
			completed++
		}
	}

	// A new gateway on the same Redis sees the settled spend.
	next := testutil.StartApp(t, env)
	want := money.Nanos(streams) * defaultCost
	lv, ok := waitBudget(t, next.AdminURL, 5*time.Second, func(l budgetLevel) bool { return l.Spent == want && l.Reserved == 0 })
	if !ok {
		t.Errorf("after the restart: spent %s reserved %s, want %d streams × %s = %s and nothing reserved",
			lv.Spent, lv.Reserved, streams, money.Nanos(defaultCost), want)
	}
	recs := spendRecords(t, p.Spend.String())
	m := scrape(t, next.AdminURL)
	if !strings.Contains(p.Logs.String(), `"msg":"stopped"`) {
		t.Error("the gateway did not log a clean stop")
	}
	assertNoPanic(t, "gateway logs", p.Logs.String())

	r.Load = fmt.Sprintf("%d SSE streams of ~2s, %d completed", streams, completed)
	r.Faults = fmt.Sprintf("SIGTERM after each stream's first delta; grace %s; new request after SIGTERM refused: %t", grace, late.err != nil)
	r.Unmetered = fmt.Sprint(f.Messages() - int64(len(recs)))
	r.Drift = nanos(lv.Spent - truthCost(f))
	r.Double = fmt.Sprint(doubleCharges(recs))
	r.Leaks = fmt.Sprint(leaks(p.Logs.String(), p.Spend.String(), next.Logs.String(), m, bodies.String()))
	r.Recovery = ms(exitAfter) + " SIGTERM to exit 0"
	if truthCost(f) != want || r.Unmetered != "0" || r.Double != "0" || r.Leaks != "0" {
		t.Errorf("ground truth %s (want %s), unmetered %s, double %s, leaks %s", truthCost(f), want, r.Unmetered, r.Double, r.Leaks)
	}
}
