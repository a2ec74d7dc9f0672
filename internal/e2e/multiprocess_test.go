package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// Prices of claude-sonnet-4-6 from the price sheet, in nano-USD per token.
// Admission estimates a prompt at the dearest rate the request can incur:
// these requests carry no cache_control, so nothing can be written to the
// cache and the $3/MTok input rate is the dearest; output at $15/MTok.
const (
	sonnetDearestInput = 3_000
	sonnetOutput       = 15_000
	// actualCost is the fake's default usage, 1,200 input and 300 output
	// tokens: 1,200 × 3,000 + 300 × 15,000 nano-USD.
	actualCost money.Nanos = 8_100_000
)

// sonnetEstimate is the hold admission places for a sonnet request of
// bodyLen bytes (each byte counted as a token, plus 2,048 tokens of
// prompt the API may add) and maxTokens of output, times 1.1 because the
// request does not name inference_geo and the workspace default may be
// "us": pricing.Estimate's rule, written out again so a change to it is
// noticed here.
func sonnetEstimate(bodyLen, maxTokens int64) money.Nanos {
	return money.Nanos(((bodyLen+2048)*sonnetDearestInput*11 + maxTokens*sonnetOutput*11 + 9) / 10)
}

// TestThreeReplicasHoldTheCap is the cap's race test across replicas: three gateway
// processes share one Redis and a small cap; waves of concurrent requests
// through the official Go SDK, spread over the three, are held at the
// upstream until every admission decision is made. Each wave must admit
// exactly what the cap allows with every hold live at once,
// floor((cap - spent) / estimate), and never more; settlement then
// replaces each hold with the actual cost, which frees room for the next
// wave, until a wave admits nothing.
func TestThreeReplicasHoldTheCap(t *testing.T) {
	f, up := startUpstream(t)
	g := newGate()
	f.Behave = func(r *http.Request, model string, stream bool) fakeupstream.Behavior {
		g.wait(r.Context())
		return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 1200, OutputTokens: 300}}
	}
	params := anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 300, Messages: userMsg("race")}
	est := sonnetEstimate(probeBodyLen(t, params), params.MaxTokens)
	// Room for 25 estimates and half of a 26th: the half never fits.
	const firstWave = 25
	limit := est*firstWave + est/2
	const key = "service/recommendation/total"
	gws := startReplicas(t, 3, up.URL, basePolicy(testpolicy.Total(limit.String())))

	counter := &countingTransport{rt: func() http.RoundTripper {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 400
		return tr
	}()}
	hc := &http.Client{Transport: counter}
	clients := make([]anthropic.Client, len(gws))
	for i, gw := range gws {
		clients[i] = anthropic.NewClient(option.WithBaseURL(gw.URL), option.WithAPIKey(testutil.CanaryToken), option.WithHTTPClient(hc))
	}

	// Watch the invariant from outside for the whole run, reading the
	// shared store through each replica in turn.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	var watched sync.WaitGroup
	var peak money.Nanos
	var polls, pollErrs int
	var pollErr error
	var breaches []string
	watched.Add(1)
	go func() {
		defer watched.Done()
		for i := 0; watchCtx.Err() == nil; i++ {
			ls, err := budgetLevels(watchCtx, gws[i%len(gws)].AdminURL)
			if err != nil && watchCtx.Err() == nil {
				pollErrs++
				pollErr = err
			}
			if err == nil {
				polls++
				for k, l := range ls {
					if l.enforce && l.spent+l.reserved > l.limit {
						breaches = append(breaches, fmt.Sprintf("%s: spent %s + reserved %s > limit %s", k, l.spent, l.reserved, l.limit))
					}
				}
				peak = max(peak, ls[key].spent+ls[key].reserved)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	var spent money.Nanos
	var admittedTotal, refusedTotal, sent int
	for wave := 0; ; wave++ {
		n := 40
		if wave == 0 {
			n = 300
		}
		want := min(n, int((limit-spent)/est))
		began := time.Now()
		admitted, refused := runWave(t, clients, g, counter, n, params, gws[wave%len(gws)].AdminURL, key, spent, est)
		t.Logf("wave %d: %d requests, %d admitted (cap allows %d), %d refused, in %v", wave, n, admitted, want, refused, time.Since(began).Round(time.Millisecond))
		if admitted != want {
			t.Errorf("wave %d admitted %d, the cap allows exactly %d (limit %s, spent %s, estimate %s)", wave, admitted, want, limit, spent, est)
		}
		sent += n
		admittedTotal += admitted
		refusedTotal += refused
		spent += actualCost * money.Nanos(admitted)
		for _, gw := range gws {
			waitLevel(t, gw.AdminURL, key, spent)
		}
		if want == 0 || wave > 20 {
			break
		}
	}
	stopWatch()
	watched.Wait()

	for _, b := range breaches {
		t.Errorf("invariant broken: %s", b)
	}
	if polls < 10 || pollErrs > 0 {
		t.Errorf("%d budget polls during the run, %d failed: %v", polls, pollErrs, pollErr)
	}
	if peak > limit {
		t.Errorf("spent + reserved peaked at %s, above the limit %s", peak, limit)
	}
	if got := f.Truth()["responses"]; got != int64(admittedTotal) {
		t.Errorf("upstream answered %d requests, gateways admitted %d", got, admittedTotal)
	}
	final := mustLevels(t, gws[0].AdminURL)[key]
	if final.spent != money.Nanos(admittedTotal)*actualCost {
		t.Errorf("spent %s, want %d × %s = %s", final.spent, admittedTotal, actualCost, money.Nanos(admittedTotal)*actualCost)
	}
	var records int
	for _, gw := range gws {
		for _, line := range strings.Split(strings.TrimSpace(gw.Spend.String()), "\n") {
			if line == "" {
				continue
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("spend log line is not JSON: %q", line)
			}
			records++
			if rec["total_usd"] != actualCost.String() {
				t.Errorf("spend record total %v, want %s", rec["total_usd"], actualCost)
			}
		}
	}
	if records != admittedTotal {
		t.Errorf("%d spend records for %d admitted requests", records, admittedTotal)
	}
	var gauges []string
	for i, gw := range gws {
		_, metrics := get(t, gw.AdminURL+"/metrics", "")
		for _, line := range strings.Split(metrics, "\n") {
			for _, bad := range []string{"clade_gateway_budget_overshoot_usd_total", "clade_gateway_orphaned_holds_total"} {
				if strings.HasPrefix(line, bad) && !strings.HasSuffix(line, " 0") {
					t.Errorf("replica %d: %s", i, line)
				}
			}
		}
		gauges = append(gauges, budgetGaugeLines(metrics))
		assertNoLeak(t, fmt.Sprintf("replica %d logs", i), gw.Logs.String())
		assertNoLeak(t, fmt.Sprintf("replica %d metrics", i), metrics)
	}
	for i := 1; i < len(gauges); i++ {
		if gauges[i] != gauges[0] {
			t.Errorf("replica %d budget gauges differ from replica 0:\n%s\nvs\n%s", i, gauges[i], gauges[0])
		}
	}
	for i, gw := range gws {
		if err := gw.Stop(); err != nil {
			t.Errorf("replica %d did not shut down cleanly on SIGTERM: %v", i, err)
		}
		if strings.Contains(gw.Logs.String(), "panic") {
			t.Errorf("replica %d logged a panic:\n%s", i, gw.Logs.String())
		}
	}
	t.Logf("race figures: replicas 3, requests %d, admitted %d, refused %d, estimate %s, limit %s, spent %s (= %d × %s), peak spent+reserved %s, overshoot %s, budget polls %d",
		sent, admittedTotal, refusedTotal, est, limit, final.spent, admittedTotal, actualCost, peak, max(0, peak-limit), polls)
}

// runWave sends n concurrent requests spread over clients while the gate
// holds the upstream, waits until every one is either at the upstream or
// refused, checks the live holds, then releases the gate and checks that
// every refusal was a 402 after exactly one HTTP attempt.
func runWave(t *testing.T, clients []anthropic.Client, g *gate, counter *countingTransport, n int,
	params anthropic.MessageNewParams, adminURL, key string, spent, est money.Nanos) (admitted, refused int) {
	t.Helper()
	g.shut()
	arrivedBefore, attemptsBefore := g.arrived.Load(), counter.n.Load()
	var refusedN atomic.Int64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := clients[i%len(clients)].Messages.New(context.Background(), params)
			errs[i] = err
			var apiErr *anthropic.Error
			if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusPaymentRequired {
				refusedN.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for g.arrived.Load()-arrivedBefore+refusedN.Load() < int64(n) {
		if time.Now().After(deadline) {
			g.release()
			wg.Wait()
			t.Fatalf("wave stuck: %d at the upstream, %d refused, of %d", g.arrived.Load()-arrivedBefore, refusedN.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	held := int(g.arrived.Load() - arrivedBefore)
	// Every admitted request's hold is live now, and nothing else.
	if l := mustLevels(t, adminURL)[key]; l.spent != spent || l.reserved != est*money.Nanos(held) {
		t.Errorf("with %d requests held: spent %s reserved %s, want spent %s reserved %d × %s", held, l.spent, l.reserved, spent, held, est)
	}
	g.release()
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			admitted++
			continue
		}
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusPaymentRequired {
			t.Errorf("request %d: %v, want success or 402", i, err)
			continue
		}
		refused++
		if !strings.Contains(apiErr.RawJSON(), `"error_code":"budget_exceeded"`) {
			t.Errorf("402 body: %s", apiErr.RawJSON())
		}
	}
	if admitted != held {
		t.Errorf("%d requests reached the upstream but %d succeeded", held, admitted)
	}
	if got := counter.n.Load() - attemptsBefore; got != int64(n) {
		t.Errorf("%d HTTP attempts for %d requests: something was retried", got, n)
	}
	return admitted, refused
}

// TestReplicasExportIdenticalBudgetGauges: budget gauges are read from the
// shared store at scrape time, so two replicas report the same levels,
// including holds the other replica placed, while requests are in flight
// and after they settle.
func TestReplicasExportIdenticalBudgetGauges(t *testing.T) {
	f, up := startUpstream(t)
	g := newGate()
	f.Behave = func(r *http.Request, model string, stream bool) fakeupstream.Behavior {
		g.wait(r.Context())
		return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 1200, OutputTokens: 300}}
	}
	params := anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 300, Messages: userMsg("gauges")}
	est := sonnetEstimate(probeBodyLen(t, params), params.MaxTokens)
	gws := startReplicas(t, 2, up.URL, basePolicy(testpolicy.Daily("50")))

	g.shut()
	const perReplica = 3
	var wg sync.WaitGroup
	errs := make(chan error, 2*perReplica)
	for _, gw := range gws {
		c := anthropic.NewClient(option.WithBaseURL(gw.URL), option.WithAPIKey(testutil.CanaryToken))
		for i := 0; i < perReplica; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.Messages.New(context.Background(), params); err != nil {
					errs <- err
				}
			}()
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for g.arrived.Load() < 2*perReplica && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	n := money.Nanos(2 * perReplica)
	inFlight := []struct{ name, scope, id string }{{"recommendation", "service", "daily"}, {"search", "team", "monthly"}}
	for i, gw := range gws {
		mfs := scrape(t, gw.AdminURL)
		for _, b := range inFlight {
			lbl := map[string]string{"scope": b.scope, "name": b.name, "id": b.id, "period": b.id}
			if got, ok := value(mfs, "clade_gateway_budget_reserved_usd", lbl); !ok || got != (n*est).Float() {
				t.Errorf("replica %d in flight: %s reserved gauge %v (present %v), want %v: the holds of both replicas", i, b.name, got, ok, (n * est).Float())
			}
		}
	}
	inFlightLines := []string{budgetGaugeLines(scrapeText(t, gws[0].AdminURL)), budgetGaugeLines(scrapeText(t, gws[1].AdminURL))}
	g.release()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if inFlightLines[0] != inFlightLines[1] {
		t.Errorf("in flight, the replicas' budget gauges differ:\n%s\nvs\n%s", inFlightLines[0], inFlightLines[1])
	}

	for _, gw := range gws {
		waitLevel(t, gw.AdminURL, "service/recommendation/daily", n*actualCost)
	}
	a, b := budgetGaugeLines(scrapeText(t, gws[0].AdminURL)), budgetGaugeLines(scrapeText(t, gws[1].AdminURL))
	if a != b {
		t.Errorf("after settlement, the replicas' budget gauges differ:\n%s\nvs\n%s", a, b)
	}
	want := fmt.Sprintf(`clade_gateway_budget_limit_usd{id="daily",name="recommendation",period="daily",scope="service"} 50
clade_gateway_budget_limit_usd{id="monthly",name="search",period="monthly",scope="team"} 5000
clade_gateway_budget_reserved_usd{id="daily",name="recommendation",period="daily",scope="service"} 0
clade_gateway_budget_reserved_usd{id="monthly",name="search",period="monthly",scope="team"} 0
clade_gateway_budget_spent_usd{id="daily",name="recommendation",period="daily",scope="service"} %[1]s
clade_gateway_budget_spent_usd{id="monthly",name="search",period="monthly",scope="team"} %[1]s`, n*actualCost)
	if a != want {
		t.Errorf("budget gauges after 6 requests at %s:\n%s\nwant\n%s", actualCost, a, want)
	}
}
