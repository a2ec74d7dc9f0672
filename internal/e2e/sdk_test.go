package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// sonnet-4-6 is $3 input and $15 output per MTok: the fake's default
// usage of 1,200 input and 300 output tokens costs
// 1,200 × 3,000 + 300 × 15,000 = 3,600,000 + 4,500,000 = 8,100,000 nano-USD.
const defaultCost = "0.0081"

func TestSDKThroughGateway(t *testing.T) {
	f, up := startUpstream(t)
	const spacing = 60 * time.Millisecond
	f.Behave = func(r *http.Request, model string, stream bool) fakeupstream.Behavior {
		return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 1200, OutputTokens: 300},
			EventSpacing: spacing, Text: []string{"Hel", "lo", " there"}}
	}
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("50"))))
	client := sdk(gw, testutil.CanaryToken)
	ctx := context.Background()

	t.Run("Messages.New", func(t *testing.T) {
		msg, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 1024, Messages: userMsg("hi")})
		if err != nil {
			t.Fatal(err)
		}
		if got := msg.Content[0].Text; got != "Hello there" {
			t.Errorf("content = %q, want the upstream's %q", got, "Hello there")
		}
		if msg.Usage.InputTokens != 1200 || msg.Usage.OutputTokens != 300 {
			t.Errorf("usage = %+v", msg.Usage)
		}
	})

	t.Run("Messages.NewStreaming keeps the upstream's spacing", func(t *testing.T) {
		stream := client.Messages.NewStreaming(ctx, anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 1024, Messages: userMsg("hi")})
		var arrivals []time.Time
		var text strings.Builder
		var acc anthropic.Message
		for stream.Next() {
			ev := stream.Current()
			arrivals = append(arrivals, time.Now())
			if err := acc.Accumulate(ev); err != nil {
				t.Fatal(err)
			}
			if d, ok := ev.AsAny().(anthropic.ContentBlockDeltaEvent); ok {
				text.WriteString(d.Delta.Text)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if text.String() != "Hello there" || acc.Usage.OutputTokens != 300 {
			t.Errorf("text %q usage %+v", text.String(), acc.Usage)
		}
		// A buffering proxy delivers every event at once at the end. With
		// ~9 events spaced 60ms apart, the first must arrive well before
		// the last.
		if len(arrivals) < 8 {
			t.Fatalf("got %d events", len(arrivals))
		}
		if span := arrivals[len(arrivals)-1].Sub(arrivals[0]); span < spacing*time.Duration(len(arrivals)-1)/2 {
			t.Errorf("events arrived within %v; the upstream spread them over %v: the stream was buffered", span, spacing*time.Duration(len(arrivals)-1))
		}
	})

	t.Run("CountTokens and Models are free", func(t *testing.T) {
		n, err := client.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: "claude-sonnet-4-6", Messages: userMsg("hi")})
		if err != nil || n.InputTokens != 42 {
			t.Fatalf("count_tokens = %+v, %v", n, err)
		}
		page, err := client.Models.List(ctx, anthropic.ModelListParams{})
		if err != nil || len(page.Data) != 2 || page.Data[0].ID != "claude-sonnet-4-6" {
			t.Fatalf("models = %+v, %v", page, err)
		}
	})

	t.Run("beta call keeps ?beta=true and anthropic-beta", func(t *testing.T) {
		_, err := client.Beta.Messages.New(ctx, anthropic.BetaMessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 1024,
			Messages: []anthropic.BetaMessageParam{anthropic.NewBetaUserMessage(anthropic.NewBetaTextBlock("hi"))},
			Betas:    []anthropic.AnthropicBeta{"files-api-2025-04-14"}})
		if err != nil {
			t.Fatal(err)
		}
		seen := f.Requests()
		last := seen[len(seen)-1]
		if last.Path != "/v1/messages" || last.RawQuery != "beta=true" || last.Header.Get("Anthropic-Beta") != "files-api-2025-04-14" {
			t.Errorf("upstream saw %s?%s beta=%q", last.Path, last.RawQuery, last.Header.Get("Anthropic-Beta"))
		}
	})

	// Every upstream request carried exactly the workspace key, and the
	// service token never reached the upstream in any header.
	upHost := strings.TrimPrefix(up.URL, "http://")
	for _, s := range f.Requests() {
		if got := s.Header.Values("X-Api-Key"); len(got) != 1 || got[0] != testutil.CanaryKey {
			t.Errorf("upstream saw x-api-key %d values", len(got))
		}
		if s.Host != upHost {
			t.Errorf("upstream saw Host %q, want %q", s.Host, upHost)
		}
		if s.Header.Get("Anthropic-Version") != "2023-06-01" {
			t.Errorf("anthropic-version not passed through: %q", s.Header.Get("Anthropic-Version"))
		}
		for k, vs := range s.Header {
			for _, v := range vs {
				if strings.Contains(v, testutil.CanaryToken) {
					t.Errorf("upstream header %s carried the service token", k)
				}
			}
		}
	}

	// Three metered calls (New, NewStreaming, beta New) at the default
	// usage; count_tokens and models cost nothing.
	_, metrics := get(t, gw.AdminURL+"/metrics", "")
	for _, want := range []string{
		`clade_gateway_tokens_total{kind="input",model="claude-sonnet-4-6",workspace="production"} 3600`,
		`clade_gateway_tokens_total{kind="output",model="claude-sonnet-4-6",workspace="production"} 900`,
		`clade_gateway_service_tokens_total{direction="input",service="recommendation",team="search",workspace="production"} 3600`,
		`clade_gateway_service_tokens_total{direction="output",service="recommendation",team="search",workspace="production"} 900`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Floats only at export: three 0.0045 output charges.
	if v := metricValue(t, metrics, `clade_gateway_component_cost_usd_total{component="output",model="claude-sonnet-4-6",workspace="production"}`); math.Abs(v-0.0135) > 1e-12 {
		t.Errorf("output cost metric = %v, want 0.0135", v)
	}
	waitSpend(t, gw, 3)
	for _, line := range strings.Split(strings.TrimSpace(gw.Spend.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("spend log line is not JSON: %v", err)
		}
		if rec["total_usd"] != defaultCost || rec["service"] != "recommendation" {
			t.Errorf("spend record total %v service %v, want %s recommendation", rec["total_usd"], rec["service"], defaultCost)
		}
	}
	// Spend reaches the store with the grant's next step, at most 250 ms
	// after the request (docs/budgets.md).
	var code int
	var body string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, body = get(t, gw.AdminURL+"/admin/budgets", testutil.AdminToken)
		if code == 200 && strings.Contains(body, `"spent_usd":"0.0243"`) || time.Now().After(deadline) {
			break
		}
	}
	if code != 200 || !strings.Contains(body, `"spent_usd":"0.0243"`) {
		t.Errorf("admin budgets %d: %s", code, body)
	}
	assertNoLeak(t, "logs", gw.Logs.String())
	assertNoLeak(t, "spend log", gw.Spend.String())
	assertNoLeak(t, "metrics", metrics)
}

// waitSpend waits for n spend records: settlement runs just after the
// response ends.
func waitSpend(t *testing.T, gw *testutil.App, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(gw.Spend.String(), "\n") < n {
		if time.Now().After(deadline) {
			t.Fatalf("want %d spend records, have:\n%s", n, gw.Spend.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBudgetRefusalIsOneAttempt(t *testing.T) {
	_, up := startUpstream(t)
	// A $0.02 daily cap: the estimate of a 1024-max-token sonnet request
	// is below it, so the first fits; the cap is then nearly used.
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("0.02"))))
	counter := &attempts{rt: http.DefaultTransport}
	client := sdk(gw, testutil.CanaryToken, option.WithHTTPClient(&http.Client{Transport: counter}))
	ctx := context.Background()
	var apiErr *anthropic.Error
	var admitted int
	for i := 0; i < 10; i++ {
		_, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 256, Messages: userMsg("hi")})
		if err == nil {
			admitted++
			continue
		}
		if !errors.As(err, &apiErr) {
			t.Fatalf("error is %T %v, want *anthropic.Error", err, err)
		}
		break
	}
	if apiErr == nil {
		t.Fatal("the cap never refused a request")
	}
	if apiErr.StatusCode != http.StatusPaymentRequired {
		t.Errorf("status %d, want 402", apiErr.StatusCode)
	}
	if counter.n != admitted+1 {
		t.Errorf("SDK made %d attempts for %d admitted + 1 refused: the refusal was retried", counter.n, admitted)
	}
	raw := apiErr.RawJSON()
	for _, want := range []string{`"type":"billing_error"`, `"error_code":"budget_exceeded"`, `Service \"recommendation\"`, `daily`, `resets at`} {
		if !strings.Contains(raw, want) {
			t.Errorf("402 body lacks %s: %s", want, raw)
		}
	}
	if apiErr.Response.Header.Get("x-should-retry") != "false" {
		t.Errorf("x-should-retry = %q", apiErr.Response.Header.Get("x-should-retry"))
	}
}

// metricValue returns the value of the series line that starts with series.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("series %s: %v", series, err)
			}
			return f
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}
