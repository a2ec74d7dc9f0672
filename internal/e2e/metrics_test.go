package e2e

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// scrapeText returns the admin listener's /metrics page.
func scrapeText(t testing.TB, adminURL string) string {
	t.Helper()
	code, body := get(t, adminURL+"/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	return body
}

// scrape parses the admin listener's /metrics page.
func scrape(t testing.TB, adminURL string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(scrapeText(t, adminURL)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// value returns the value of the series of family name whose labels are
// exactly lbl: a counter's or gauge's value, a histogram's count.
func value(mfs map[string]*dto.MetricFamily, name string, lbl map[string]string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) != len(lbl) {
			continue
		}
		match := true
		for _, lp := range m.GetLabel() {
			if v, ok := lbl[lp.GetName()]; !ok || v != lp.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// contractSeries are the metric names dashboards and alert rules depend
// on whose values a test can know exactly (the README's metrics table,
// less the latency histograms).
var contractSeries = []string{
	"clade_gateway_requests_total",
	"clade_gateway_service_requests_total",
	"clade_gateway_cost_usd_total",
	"clade_gateway_component_cost_usd_total",
	"clade_gateway_tokens_total",
	"clade_gateway_service_tokens_total",
	"clade_gateway_rejected_total",
	"clade_gateway_budget_limit_usd",
	"clade_gateway_budget_spent_usd",
	"clade_gateway_budget_reserved_usd",
}

// TestMetricsContract sends real requests through the official Go SDK and
// compares the scraped contract series with
// testdata/metrics/contract.txt, whose figures are worked out by hand from
// the price sheet in its comments. It then checks label hygiene over every
// series the gateway exports.
func TestMetricsContract(t *testing.T) {
	_, up := startUpstream(t)
	policy := basePolicy(testpolicy.Daily("0.30"))
	policy.UnknownModel = "charge_max"
	gw := testutil.StartApp(t, env(t, up.URL, policy))
	client := sdk(gw, testutil.CanaryToken, option.WithMaxRetries(0))
	ctx := context.Background()
	const unknownModel = "claude-sonnet-9-9-unpriced"

	// Two priced responses, JSON and SSE, at the fake's default usage.
	if _, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 1024, Messages: userMsg("hi")}); err != nil {
		t.Fatal(err)
	}
	stream := client.Messages.NewStreaming(ctx, anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 1024, Messages: userMsg("hi")})
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	// A model the price table lacks (the allowlist's glob admits it),
	// charged as the dearest model under charge_max.
	if _, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: unknownModel, MaxTokens: 1024, Messages: userMsg("hi")}); err != nil {
		t.Fatal(err)
	}
	// 20,000 output tokens alone are estimated at $0.30: over what is left
	// of the $0.30 cap.
	_, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 20_000, Messages: userMsg("hi")})
	if apiErr := (*anthropic.Error)(nil); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("large request: %v, want 402", err)
	}
	// An unknown token and a path the gateway does not serve: neither may
	// become a label value.
	const badToken = "clade_sk_NOTATOKENSECRET0123456789abcdefgh"
	bad := anthropic.NewClient(option.WithBaseURL(gw.URL), option.WithAPIKey(badToken), option.WithMaxRetries(0))
	if _, err := bad.Messages.New(ctx, anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 1024, Messages: userMsg("hi")}); err == nil {
		t.Fatal("an unknown token was admitted")
	}
	req, _ := http.NewRequest(http.MethodGet, gw.URL+"/v1/secret-path-zzz?key=abc", nil)
	req.Header.Set("x-api-key", testutil.CanaryToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unknown path: %d, want 403", resp.StatusCode)
	}

	want, err := os.ReadFile(filepath.Join("testdata", "metrics", "contract.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// Settlement and the request counter of a response run as its body
	// closes, just after the client has read it: poll briefly.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = promtest.ScrapeAndCompare(gw.AdminURL+"/metrics", bytes.NewReader(want), contractSeries...)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("contract series differ from testdata/metrics/contract.txt (- got, + want):\n%v", err)
	}

	mfs := scrape(t, gw.AdminURL)
	for _, h := range []struct {
		name string
		lbl  map[string]string
		n    float64
	}{
		{"clade_gateway_upstream_duration_seconds", map[string]string{"route": "messages", "model": "claude-sonnet-4-6"}, 2},
		{"clade_gateway_upstream_duration_seconds", map[string]string{"route": "messages", "model": "other"}, 1},
		{"clade_gateway_time_to_first_byte_seconds", map[string]string{"route": "messages", "model": "claude-sonnet-4-6"}, 2},
		{"clade_gateway_overhead_seconds", map[string]string{}, 3},
	} {
		if got, ok := value(mfs, h.name, h.lbl); !ok || got != h.n {
			t.Errorf("%s%v count %v (present %v), want %v", h.name, h.lbl, got, ok, h.n)
		}
	}
	checkLabelHygiene(t, mfs, []string{unknownModel, badToken, "secret-path", "key=abc"})
	assertNoLeak(t, "logs", gw.Logs.String())
}

// checkLabelHygiene fails on any label value that carries a secret, an id
// or a path, and on clade_gateway_* service or model values outside the
// sets the policy and price table define.
func checkLabelHygiene(t *testing.T, mfs map[string]*dto.MetricFamily, forbidden []string) {
	t.Helper()
	forbidden = append(forbidden, testutil.CanaryKey, testutil.CanaryToken, testutil.OtherToken, testutil.AdminToken,
		"req_", "msg_", "msgbatch_", "/", "sk-ant")
	allowed := map[string]map[string]bool{
		"service": {"recommendation": true, "indexer": true, "unknown": true},
		"model":   {"claude-sonnet-4-6": true, "other": true},
	}
	var series int
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			series++
			for _, lp := range m.GetLabel() {
				for _, f := range forbidden {
					if strings.Contains(lp.GetValue(), f) {
						t.Errorf("%s{%s=%q}: label value contains %q", name, lp.GetName(), lp.GetValue(), f)
					}
				}
				if set, ok := allowed[lp.GetName()]; ok && strings.HasPrefix(name, "clade_gateway_") && !set[lp.GetValue()] {
					t.Errorf("%s{%s=%q}: not a value the policy or price table defines", name, lp.GetName(), lp.GetValue())
				}
			}
		}
	}
	if series < 50 {
		t.Errorf("only %d series scraped", series)
	}
}

// TestMetricsStayBoundedUnderHostileInput: a thousand requests with
// distinct model names, paths and tokens add no series.
func TestMetricsStayBoundedUnderHostileInput(t *testing.T) {
	f, up := startUpstream(t)
	f.Behave = func(r *http.Request, model string, stream bool) fakeupstream.Behavior {
		return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 10, OutputTokens: 10}}
	}
	policy := basePolicy(testpolicy.Daily("50"))
	policy.UnknownModel = "charge_max"
	gw := testutil.StartApp(t, env(t, up.URL, policy))
	send := func(i int) {
		body := `{"model":"claude-sonnet-x` + strings.Repeat("z", i%7) + string(rune('a'+i%26)) + `","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`
		path := "/v1/messages"
		tok := testutil.CanaryToken
		switch i % 3 {
		case 1:
			path = "/v1/p" + strings.Repeat("q", i%11)
		case 2:
			tok = testutil.CanaryToken[:len(testutil.CanaryToken)-1] + string(rune('A'+i%26))
		}
		req, _ := http.NewRequest(http.MethodPost, gw.URL+path, strings.NewReader(body))
		req.Header.Set("x-api-key", tok)
		req.Header.Set("content-type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	count := func() map[string]bool {
		set := map[string]bool{}
		for name, mf := range scrape(t, gw.AdminURL) {
			if !strings.HasPrefix(name, "clade_gateway_") {
				continue
			}
			for _, m := range mf.GetMetric() {
				key := name
				for _, lp := range m.GetLabel() { // sorted by name
					key += " " + lp.GetName() + "=" + lp.GetValue()
				}
				set[key] = true
			}
		}
		return set
	}
	count() // a scrape reads the store: its own series exist from then on
	for i := 0; i < 60; i++ {
		send(i)
	}
	time.Sleep(200 * time.Millisecond) // settlements of the last responses
	before := count()
	for i := 60; i < 600; i++ {
		send(i)
	}
	time.Sleep(200 * time.Millisecond)
	for s := range count() {
		if !before[s] {
			t.Errorf("a hostile input added a series: %s", s)
		}
	}
	checkLabelHygiene(t, scrape(t, gw.AdminURL), []string{"claude-sonnet-x", "/v1/p"})
}
