package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// gate holds every Messages request at the fake upstream until released,
// so that all the holds of a wave are live at once and the number the cap
// admits does not depend on timing.
type gate struct {
	mu      sync.Mutex
	open    chan struct{}
	arrived atomic.Int64
}

func newGate() *gate {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gate) shut() {
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

func (g *gate) release() {
	g.mu.Lock()
	close(g.open)
	g.mu.Unlock()
}

func (g *gate) wait(ctx context.Context) {
	g.arrived.Add(1)
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// countingTransport counts HTTP attempts; safe for concurrent use.
type countingTransport struct {
	n  atomic.Int64
	rt http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

// probeBodyLen returns the size of the body the SDK sends for params,
// without any network: the estimate depends on it.
func probeBodyLen(t *testing.T, params anthropic.MessageNewParams) int64 {
	t.Helper()
	var n int64
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		b, _ := io.ReadAll(r.Body)
		n = int64(len(b))
		body := `{"id":"msg_probe","type":"message","role":"assistant","model":"claude-sonnet-4-6","content":[],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}`
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
	})
	c := anthropic.NewClient(option.WithBaseURL("http://probe.invalid"), option.WithAPIKey("x"),
		option.WithHTTPClient(&http.Client{Transport: rt}))
	if _, err := c.Messages.New(context.Background(), params); err != nil {
		t.Fatalf("probe: %v", err)
	}
	return n
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// level is one budget's state from GET /admin/budgets.
type level struct {
	limit, spent, reserved money.Nanos
	enforce                bool
}

func budgetLevels(ctx context.Context, adminURL string) (map[string]level, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, adminURL+"/admin/budgets", nil)
	req.Header.Set("Authorization", "Bearer "+testutil.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /admin/budgets: %d %s", resp.StatusCode, raw)
	}
	var body struct {
		Budgets []struct {
			Scope, Name, ID string
			Limit           string `json:"limit_usd"`
			Spent           string `json:"spent_usd"`
			Reserved        string `json:"reserved_usd"`
			Enforce         bool
		}
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("GET /admin/budgets: %w", err)
	}
	out := map[string]level{}
	for _, b := range body.Budgets {
		var l level
		var errs [3]error
		l.limit, errs[0] = money.Parse(b.Limit)
		l.spent, errs[1] = money.Parse(b.Spent)
		l.reserved, errs[2] = money.Parse(b.Reserved)
		if err := errors.Join(errs[:]...); err != nil {
			return nil, fmt.Errorf("budget %s/%s/%s: %w", b.Scope, b.Name, b.ID, err)
		}
		l.enforce = b.Enforce
		out[b.Scope+"/"+b.Name+"/"+b.ID] = l
	}
	return out, nil
}

func mustLevels(t *testing.T, adminURL string) map[string]level {
	t.Helper()
	ls, err := budgetLevels(context.Background(), adminURL)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// waitLevel polls adminURL until budget key reaches spent with nothing
// reserved (settlement runs just after each response ends).
func waitLevel(t *testing.T, adminURL, key string, spent money.Nanos) level {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		l := mustLevels(t, adminURL)[key]
		if l.spent == spent && l.reserved == 0 {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: spent %s reserved %s, want spent %s reserved 0", key, l.spent, l.reserved, spent)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startReplicas starts n gateway processes sharing one Redis.
func startReplicas(t *testing.T, n int, upstream string, policy testpolicy.Policy, extra ...string) []*testutil.Process {
	t.Helper()
	bin := testutil.BuildBinary(t)
	rd := testutil.StartRedis(t)
	e := env(t, upstream, policy)
	e["CLADE_REDIS_URL"] = rd.URL()
	// Per-request holds, whose admissions and gauges these tests count
	// exactly; the grants test sets its window.
	e["CLADE_GRANT_WINDOW"] = "0"
	for i := 0; i+1 < len(extra); i += 2 {
		e[extra[i]] = extra[i+1]
	}
	out := make([]*testutil.Process, n)
	for i := range out {
		out[i] = testutil.StartProcess(t, bin, e)
	}
	return out
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

// budgetGaugeLines returns the budget level series of a scrape, sorted as
// the registry writes them.
func budgetGaugeLines(metrics string) string {
	var out []string
	for _, line := range strings.Split(metrics, "\n") {
		for _, p := range []string{"clade_gateway_budget_limit_usd{", "clade_gateway_budget_spent_usd{", "clade_gateway_budget_reserved_usd{"} {
			if strings.HasPrefix(line, p) {
				out = append(out, line)
			}
		}
	}
	return strings.Join(out, "\n")
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
