// The race detector multiplies the cost of the scale test's ten thousand
// requests about tenfold and checks nothing the other end-to-end tests do
// not; `make test` runs this file without it.

//go:build !race

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
	dto "github.com/prometheus/client_model/go"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// The scale a platform team runs: thousands of services in hundreds of
// teams, each with two budgets, every one of them calling three models.
const (
	scaleServices = 2000
	scaleTeams    = 200
	// What one replica's /metrics may hold at that scale: Prometheus
	// operators budget tens of thousands of series per target.
	scaleMaxSeries = 40_000
	scaleMaxBytes  = 5 << 20
)

// scaleModels are the models every service calls, by the names clients
// send and as the price table labels them.
var scaleModels = []struct{ request, label string }{
	{"claude-opus-4-6", "claude-opus-4-6"},
	{"claude-sonnet-4-6", "claude-sonnet-4-6"},
	{"claude-haiku-4-5", "claude-haiku-4-5-20251001"},
}

// scaleRefusals are the ways the gateway refuses a known service's
// request; service i is refused the (i mod len)th way, so every reason is
// seen while every service sees a refusal.
var scaleRefusals = []string{"budget_exceeded", "rate_limited", "model_not_allowed", "unknown_model", "path_refused", "bad_request", "too_large"}

// scaleUpstreamErrors are the statuses the fake upstream answers a
// service's fourth request with, in turn.
var scaleUpstreamErrors = []int{400, 429, 500, 529}

func scaleToken(i int) string   { return fmt.Sprintf("clade_sk_SCALE%06dTOKEN0123456789abcdefgh", i) }
func scaleService(i int) string { return fmt.Sprintf("svc-%04d", i) }

// scalePolicy: services in teams, two workspaces, two tokens and two
// budgets (with alert thresholds) per service, a budget per team. Services
// refused for their rate limit get a burst of four: their fifth request is
// over it.
func scalePolicy() testpolicy.Policy {
	key := func(name string) []testpolicy.Key {
		return []testpolicy.Key{{Name: name, Env: "TEST_WORKSPACE_KEY", Created: "2026-09-01"}}
	}
	p := testpolicy.Policy{
		UnknownModel: "reject",
		Workspaces:   []testpolicy.Workspace{{Name: "production", Keys: key("prod-backend")}, {Name: "staging", Keys: key("staging-backend")}},
	}
	for t := range scaleTeams {
		p.Teams = append(p.Teams, testpolicy.Team{Name: fmt.Sprintf("team-%03d", t), Budgets: []testpolicy.Budget{testpolicy.Monthly("5000", 0.5, 0.8)}})
	}
	for i := range scaleServices {
		ws := "production"
		if i%2 == 1 {
			ws = "staging"
		}
		s := testpolicy.Service{
			Name: scaleService(i), Team: fmt.Sprintf("team-%03d", i%scaleTeams), Workspace: ws,
			Tokens:  []string{scaleToken(i), scaleToken(i) + "-next"},
			Models:  []string{"claude-opus-4-6", "claude-sonnet-4-6", "claude-haiku-4-5", "claude-mythos-*"},
			Budgets: []testpolicy.Budget{testpolicy.Daily("4", 0.8), testpolicy.Monthly("20", 0.5, 0.9)},
		}
		if scaleRefusals[i%len(scaleRefusals)] == "rate_limited" {
			s.RateLimit = &testpolicy.RateLimit{RequestsPerSecond: 0.001, Burst: 4}
		}
		p.Services = append(p.Services, s)
	}
	return p
}

// startScaleGateway starts a gateway on Redis with the scale policy and
// has every service make its calls: one on each model with every cost
// component in the answer (one of the three streamed), one the upstream
// fails, and one the gateway refuses. It returns the gateway once every
// settlement has reached the store.
func startScaleGateway(tb testing.TB) *testutil.App {
	tb.Helper()
	f, up := startUpstream(tb)
	f.Behave = func(r *http.Request, model string, stream bool) fakeupstream.Behavior {
		var status int
		fmt.Sscan(r.Header.Get("X-Scale-Upstream-Status"), &status)
		return fakeupstream.Behavior{Status: status, Usage: fakeupstream.Usage{
			InputTokens: 1000, CacheCreation: 300, Cache5m: 200, Cache1h: 100, CacheRead: 400, OutputTokens: 250, WebSearch: 1,
		}}
	}
	rd := testutil.StartRedis(tb)
	e := env(tb, up.URL, scalePolicy())
	e["CLADE_REDIS_URL"] = rd.URL()
	e["CLADE_LOG_LEVEL"] = "warn"
	e["CLADE_MAX_BODY_BYTES"] = "65536"
	gw := testutil.StartApp(tb, e)

	jobs := make(chan int)
	errs := make(chan error, scaleServices)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := scaleCalls(gw, i); err != nil {
					errs <- fmt.Errorf("%s: %w", scaleService(i), err)
				}
			}
		}()
	}
	for i := range scaleServices {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	// An unknown token is refused before any service is known.
	if code := scaleRaw(gw, http.MethodPost, "/v1/messages", "clade_sk_NOSUCHTOKEN", `{}`); code != http.StatusUnauthorized {
		tb.Fatalf("unknown token: %d, want 401", code)
	}
	// Draws on admission grants settle in memory and reach the store when
	// the grant is returned; wait until every service's spend is there.
	deadline := time.Now().Add(30 * time.Second)
	for !scaleSettled(scrape(tb, gw.AdminURL)) {
		if time.Now().After(deadline) {
			tb.Fatal("spend of some services never reached the store")
		}
		time.Sleep(200 * time.Millisecond)
	}
	return gw
}

// scaleSettled reports whether every service's daily budget holds what its
// cost series say it spent.
func scaleSettled(mfs map[string]*dto.MetricFamily) bool {
	spent := map[string]float64{}
	for _, m := range mfs["clade_gateway_cost_usd_total"].GetMetric() {
		spent[labelOf(m, "service")] += m.GetCounter().GetValue()
	}
	daily := seriesWithValue(mfs, "clade_gateway_budget_spent_usd", "id", "daily")
	for _, m := range daily {
		if math.Abs(m.GetGauge().GetValue()-spent[labelOf(m, "name")]) > 1e-7 {
			return false
		}
	}
	return len(spent) == scaleServices && len(daily) == scaleServices
}

// scaleCalls makes service i's calls and checks each answer's status.
func scaleCalls(gw *testutil.App, i int) error {
	ctx := context.Background()
	client := anthropic.NewClient(option.WithBaseURL(gw.URL), option.WithAPIKey(scaleToken(i)), option.WithMaxRetries(0))
	for m, model := range scaleModels {
		// The answer bills one web search, which a request may only incur
		// when it declares the tool: the gateway charges impossible usage
		// at the hold's estimate.
		p := anthropic.MessageNewParams{Model: anthropic.Model(model.request), MaxTokens: 300, Messages: userMsg("hi"),
			Tools: []anthropic.ToolUnionParam{{OfWebSearchTool20250305: &anthropic.WebSearchTool20250305Param{MaxUses: anthropic.Int(1)}}}}
		if m == i%len(scaleModels) {
			s := client.Messages.NewStreaming(ctx, p)
			for s.Next() {
			}
			if err := s.Err(); err != nil {
				return fmt.Errorf("stream %s: %w", model.request, err)
			}
			continue
		}
		if _, err := client.Messages.New(ctx, p); err != nil {
			return fmt.Errorf("%s: %w", model.request, err)
		}
	}
	status := scaleUpstreamErrors[i%len(scaleUpstreamErrors)]
	_, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 300, Messages: userMsg("hi")},
		option.WithHeader("X-Scale-Upstream-Status", fmt.Sprint(status)))
	if apiErr := (*anthropic.Error)(nil); !errors.As(err, &apiErr) || apiErr.StatusCode != status {
		return fmt.Errorf("upstream error %d: got %w", status, err)
	}

	tok := scaleToken(i)
	msg := `{"model":"claude-sonnet-4-6","max_tokens":300,"messages":[{"role":"user","content":"hi"}]}`
	var code, want int
	switch reason := scaleRefusals[i%len(scaleRefusals)]; reason {
	case "budget_exceeded":
		// 200,000 output tokens of Opus are estimated at $5: over the
		// $4 daily budget.
		code, want = scaleRaw(gw, http.MethodPost, "/v1/messages", tok, `{"model":"claude-opus-4-6","max_tokens":200000,"messages":[{"role":"user","content":"hi"}]}`), http.StatusPaymentRequired
	case "rate_limited":
		code, want = scaleRaw(gw, http.MethodPost, "/v1/messages", tok, msg), http.StatusTooManyRequests
	case "model_not_allowed":
		code, want = scaleRaw(gw, http.MethodPost, "/v1/messages", tok, `{"model":"claude-fable-5","max_tokens":300,"messages":[{"role":"user","content":"hi"}]}`), http.StatusBadRequest
	case "unknown_model":
		code, want = scaleRaw(gw, http.MethodPost, "/v1/messages", tok, `{"model":"claude-mythos-preview","max_tokens":300,"messages":[{"role":"user","content":"hi"}]}`), http.StatusForbidden
	case "path_refused":
		code, want = scaleRaw(gw, http.MethodPost, "/v1/complete", tok, `{}`), http.StatusForbidden
	case "bad_request":
		code, want = scaleRaw(gw, http.MethodPost, "/v1/messages", tok, `{"model":`), http.StatusBadRequest
	case "too_large":
		code, want = scaleRaw(gw, http.MethodPost, "/v1/messages", tok, `{"model":"claude-sonnet-4-6","pad":"`+strings.Repeat("x", 70_000)+`"}`), http.StatusRequestEntityTooLarge
	}
	if code != want {
		return fmt.Errorf("refusal %s: %d, want %d", scaleRefusals[i%len(scaleRefusals)], code, want)
	}
	return nil
}

// scaleRaw sends what no SDK would (malformed or oversized bodies, refused
// paths) and returns the status.
func scaleRaw(gw *testutil.App, method, path, token, body string) int {
	req, _ := http.NewRequest(method, gw.URL+path, strings.NewReader(body))
	req.Header.Set("x-api-key", token)
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// seriesWithValue returns the series of family name whose label lbl is v.
func seriesWithValue(mfs map[string]*dto.MetricFamily, name, lbl, v string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range mfs[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == lbl && lp.GetValue() == v {
				out = append(out, m)
			}
		}
	}
	return out
}

func labelOf(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// perServiceBound is how many series each family labelled by service may
// hold for one service: the whole per-service cost of the gateway's
// metrics. A family that gains a service label must be added here, with
// its bound.
var perServiceBound = map[string]int{
	"clade_gateway_cost_usd_total":         len(scaleModels), // one per model the service uses
	"clade_gateway_service_tokens_total":   2,                // input, output
	"clade_gateway_service_requests_total": 3,                // ok, refused, upstream_error
	"clade_gateway_budget_refusals_total":  4,                // the refusing budget's scope: service, team, workspace, principal
	"clade_gateway_principals_active":      5,                // one per principal level the service declares
}

// TestMetricsAtScale: with 2,000 services in 200 teams, each having called
// three models with every cost component in the answers and having seen
// every outcome, one replica's /metrics stays under 40,000 series and
// 5 MB, no family grows with services faster than its stated bound, and
// the spend each service's series add up to is what its budget holds.
// It reports how long one scrape took; BenchmarkMetricsScrapeAtScale
// checks the render time.
func TestMetricsAtScale(t *testing.T) {
	gw := startScaleGateway(t)
	start := time.Now()
	text := scrapeText(t, gw.AdminURL)
	took := time.Since(start)
	series, perFamily := countSeries(text)
	t.Logf("%d services x %d models: %d series, %d bytes per scrape, rendered in %v (one scrape; timed by BenchmarkMetricsScrapeAtScale)",
		scaleServices, len(scaleModels), series, len(text), took.Round(time.Millisecond))
	for _, f := range topFamilies(perFamily, 12) {
		t.Logf("  %6d %s", perFamily[f], f)
	}
	mfs := scrape(t, gw.AdminURL)
	if sec, n := statusTime(mfs); n > 0 {
		t.Logf("budget levels read from Redis in %.1f ms per scrape on average", sec/n*1000)
	}
	if series >= scaleMaxSeries {
		t.Errorf("%d series per scrape, want under %d", series, scaleMaxSeries)
	}
	if len(text) >= scaleMaxBytes {
		t.Errorf("%d bytes per scrape, want under %d", len(text), scaleMaxBytes)
	}

	perService := map[string]map[string]int{} // family -> service -> series
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "clade_gateway_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			svc := labelOf(m, "service")
			if svc == "" {
				continue
			}
			if _, ok := perServiceBound[name]; !ok {
				t.Fatalf("%s is labelled by service but has no per-service bound", name)
			}
			if perService[name] == nil {
				perService[name] = map[string]int{}
			}
			perService[name][svc]++
		}
	}
	for name, bound := range perServiceBound {
		for svc, n := range perService[name] {
			if n > bound {
				t.Errorf("%s: %d series for service %s, bound %d", name, n, svc, bound)
			}
		}
	}
	// Every service saw every outcome.
	for _, outcome := range []string{"ok", "refused", "upstream_error"} {
		n := 0
		for _, m := range seriesWithValue(mfs, "clade_gateway_service_requests_total", "outcome", outcome) {
			if strings.HasPrefix(labelOf(m, "service"), "svc-") {
				n++
			}
		}
		if n != scaleServices {
			t.Errorf("%d services with outcome %s, want %d", n, outcome, scaleServices)
		}
	}
	for _, reason := range append(scaleRefusals, "unauthenticated") {
		if _, ok := value(mfs, "clade_gateway_rejected_total", map[string]string{"reason": reason}); !ok {
			t.Errorf("no clade_gateway_rejected_total{reason=%q}", reason)
		}
	}
	for _, comp := range []string{"input", "output", "cache_write_5m", "cache_write_1h", "cache_read", "web_search"} {
		if len(seriesWithValue(mfs, "clade_gateway_component_cost_usd_total", "component", comp)) == 0 {
			t.Errorf("no spend on component %s", comp)
		}
	}

	// The spend a dashboard shows per service (the sum of its
	// clade_gateway_cost_usd_total series) is what its daily budget holds,
	// to the few nano-USD per response by which rounding each component up
	// can exceed the exact total.
	spent := map[string]float64{}
	for _, m := range mfs["clade_gateway_cost_usd_total"].GetMetric() {
		spent[labelOf(m, "service")] += m.GetCounter().GetValue()
	}
	for i := range scaleServices {
		svc := scaleService(i)
		budget, ok := value(mfs, "clade_gateway_budget_spent_usd", map[string]string{"scope": "service", "name": svc, "id": "daily", "period": "daily"})
		if !ok || budget == 0 || math.Abs(spent[svc]-budget) > 1e-7 {
			t.Errorf("%s: cost series sum to %v, daily budget spent %v (present %v)", svc, spent[svc], budget, ok)
		}
	}
}
