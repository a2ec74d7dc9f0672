package e2e

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// batchResultCost is one result at the fake's batch usage (1,200 input and
// 300 output tokens) on claude-sonnet-4-6 at batch prices, half of $3 and
// $15 per MTok: 1,200 × 1,500 + 300 × 7,500 = 1,800,000 + 2,250,000
// nano-USD.
const batchResultCost money.Nanos = 4_050_000

func batchParams(ids ...string) anthropic.MessageBatchNewParams {
	var p anthropic.MessageBatchNewParams
	for _, id := range ids {
		p.Requests = append(p.Requests, anthropic.MessageBatchNewParamsRequest{CustomID: id,
			Params: anthropic.MessageBatchNewParamsRequestParams{Model: "claude-sonnet-4-6", MaxTokens: 64, Messages: userMsg("batch " + id)}})
	}
	return p
}

// TestBatchFlow is the batch flow end to end through the official Go SDK:
// results_url points at the gateway; each result is charged once at batch
// prices whether the service downloads the results twice or never; and a
// service cannot see another service's batch.
func TestBatchFlow(t *testing.T) {
	f, up := startUpstream(t)
	if u := fakeupstream.BatchUsage; u.InputTokens != 1200 || u.OutputTokens != 300 {
		t.Fatalf("fake batch usage changed to %+v; batchResultCost assumes 1200/300", u)
	}
	listen := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	e := env(t, up.URL, basePolicy(testpolicy.Daily("50")))
	e["CLADE_LISTEN"] = listen
	e["CLADE_PUBLIC_URL"] = "http://" + listen
	e["CLADE_BATCH_POLL_INTERVAL"] = "100ms"
	gw := testutil.StartApp(t, e)
	client := sdk(gw, testutil.CanaryToken)
	ctx := context.Background()
	const key = "service/recommendation/daily"

	b1, err := client.Messages.Batches.New(ctx, batchParams("a", "b", "c"))
	if err != nil {
		t.Fatal(err)
	}
	wantURL := gw.URL + "/v1/messages/batches/" + b1.ID + "/results"
	if b1.ResultsURL != wantURL {
		t.Errorf("created batch results_url %q, want %q", b1.ResultsURL, wantURL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := client.Messages.Batches.Get(ctx, b1.ID, anthropic.MessageBatchGetParams{})
		if err != nil {
			t.Fatal(err)
		}
		if got.ResultsURL != wantURL {
			t.Errorf("retrieved batch results_url %q, want %q", got.ResultsURL, wantURL)
		}
		if got.ProcessingStatus == anthropic.MessageBatchProcessingStatusEnded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch still %s", got.ProcessingStatus)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The poller meters the ended batch on its own and releases the hold.
	waitLevel(t, gw.AdminURL, key, 3*batchResultCost)

	for i := 0; i < 2; i++ {
		s := client.Messages.Batches.ResultsStreaming(ctx, b1.ID, anthropic.MessageBatchResultsParams{})
		var ids []string
		for s.Next() {
			r := s.Current()
			ids = append(ids, r.CustomID)
			if r.Result.Type != "succeeded" || r.Result.Message.Usage.InputTokens != 1200 || r.Result.Message.Usage.OutputTokens != 300 {
				t.Errorf("download %d: result %s: %s usage %+v", i+1, r.CustomID, r.Result.Type, r.Result.Message.Usage)
			}
		}
		if err := s.Err(); err != nil {
			t.Fatalf("download %d: %v", i+1, err)
		}
		sort.Strings(ids)
		if strings.Join(ids, ",") != "a,b,c" {
			t.Errorf("download %d: results %v", i+1, ids)
		}
	}
	// Downloads through the gateway charge nothing, and polling does not
	// meter the ended batch again.
	time.Sleep(500 * time.Millisecond) // five poll intervals
	if l := mustLevels(t, gw.AdminURL)[key]; l.spent != 3*batchResultCost || l.reserved != 0 {
		t.Errorf("after two downloads: spent %s reserved %s, want spent 3 × %s = %s reserved 0", l.spent, l.reserved, batchResultCost, 3*batchResultCost)
	}

	// A second batch that the service never retrieves nor downloads is
	// metered all the same.
	b2, err := client.Messages.Batches.New(ctx, batchParams("x", "y", "z"))
	if err != nil {
		t.Fatal(err)
	}
	waitLevel(t, gw.AdminURL, key, 6*batchResultCost)
	if got := f.ResultsDownloads(); got != 4 {
		t.Errorf("upstream served %d results downloads, want 4: the poller once per batch, the service twice", got)
	}

	// Another service of the same workspace cannot see either batch.
	other := sdk(gw, testutil.OtherToken)
	for _, id := range []string{b1.ID, b2.ID} {
		_, err := other.Messages.Batches.Get(ctx, id, anthropic.MessageBatchGetParams{})
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
			t.Errorf("indexer Get(%s): %v, want 404", id, err)
		}
		s := other.Messages.Batches.ResultsStreaming(ctx, id, anthropic.MessageBatchResultsParams{})
		for s.Next() {
			t.Errorf("indexer downloaded a result of %s", id)
		}
		if !errors.As(s.Err(), &apiErr) || apiErr.StatusCode != http.StatusNotFound {
			t.Errorf("indexer results of %s: %v, want 404", id, s.Err())
		}
	}
	if got := f.ResultsDownloads(); got != 4 {
		t.Errorf("upstream served %d results downloads after the other service tried, want 4", got)
	}
	time.Sleep(300 * time.Millisecond)
	if l := mustLevels(t, gw.AdminURL)[key]; l.spent != 6*batchResultCost || l.reserved != 0 {
		t.Errorf("at the end: spent %s reserved %s, want 6 × %s = %s", l.spent, l.reserved, batchResultCost, 6*batchResultCost)
	}
	assertNoLeak(t, "logs", gw.Logs.String())
}

// TestBatchSpendIsLoggedAndExported: each batch result is a metered
// request, so like any other it
// gets one spend-log record and counts in clade_gateway_cost_usd_total and
// clade_gateway_tokens_total, which finance and the dashboards read.
func TestBatchSpendIsLoggedAndExported(t *testing.T) {
	_, up := startUpstream(t)
	e := env(t, up.URL, basePolicy(testpolicy.Daily("50")))
	e["CLADE_BATCH_POLL_INTERVAL"] = "100ms"
	gw := testutil.StartApp(t, e)
	client := sdk(gw, testutil.CanaryToken)
	if _, err := client.Messages.Batches.New(context.Background(), batchParams("a", "b", "c")); err != nil {
		t.Fatal(err)
	}
	waitLevel(t, gw.AdminURL, "service/recommendation/daily", 3*batchResultCost)
	time.Sleep(300 * time.Millisecond)

	var records int
	for _, line := range strings.Split(strings.TrimSpace(gw.Spend.String()), "\n") {
		if line == "" {
			continue
		}
		records++
		for _, want := range []string{`"service":"recommendation"`, `"total_usd":"` + batchResultCost.String() + `"`, `"service_tier":"batch"`} {
			if !strings.Contains(line, want) {
				t.Errorf("batch spend record lacks %s: %s", want, line)
			}
		}
	}
	if records != 3 {
		t.Errorf("%d spend-log records for 3 metered batch results, want 3", records)
	}
	mfs := scrape(t, gw.AdminURL)
	svc := map[string]string{"service": "recommendation", "team": "search", "workspace": "production"}
	byModel := map[string]string{"workspace": "production", "model": "claude-sonnet-4-6"}
	with := func(base map[string]string, k, v string) map[string]string {
		m := map[string]string{k: v}
		for bk, bv := range base {
			m[bk] = bv
		}
		return m
	}
	for _, c := range []struct {
		name string
		lbl  map[string]string
		want float64
	}{
		{"clade_gateway_cost_usd_total", with(svc, "model", "claude-sonnet-4-6"), 3 * (0.0018 + 0.00225)},
		{"clade_gateway_component_cost_usd_total", with(byModel, "component", "input"), 3 * 0.0018},
		{"clade_gateway_component_cost_usd_total", with(byModel, "component", "output"), 3 * 0.00225},
		{"clade_gateway_tokens_total", with(byModel, "kind", "input"), 3600},
		{"clade_gateway_tokens_total", with(byModel, "kind", "output"), 900},
		{"clade_gateway_service_tokens_total", with(svc, "direction", "input"), 3600},
		{"clade_gateway_service_tokens_total", with(svc, "direction", "output"), 900},
	} {
		got, ok := value(mfs, c.name, c.lbl)
		if !ok || got < c.want-1e-12 || got > c.want+1e-12 {
			t.Errorf("%s%v = %v (present %v), want %v for 3 batch results", c.name, c.lbl, got, ok, c.want)
		}
	}
}

// TestBatchResultsURLDefaultsToRequestHost: without CLADE_PUBLIC_URL the
// README promises results_url on the Host the client used. Left at
// api.anthropic.com, the TypeScript and Python SDKs would send the service
// token to Anthropic and fetch results around the gateway.
func TestBatchResultsURLDefaultsToRequestHost(t *testing.T) {
	_, up := startUpstream(t)
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("50"))))
	client := sdk(gw, testutil.CanaryToken)
	b, err := client.Messages.Batches.New(context.Background(), batchParams("a"))
	if err != nil {
		t.Fatal(err)
	}
	if want := gw.URL + "/v1/messages/batches/" + b.ID + "/results"; b.ResultsURL != want {
		t.Errorf("results_url %q, want %q", b.ResultsURL, want)
	}
	list, err := client.Messages.Batches.List(context.Background(), anthropic.MessageBatchListParams{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range list.Data {
		if !strings.HasPrefix(x.ResultsURL, gw.URL+"/") {
			t.Errorf("listed batch %s results_url %q, want it on %s", x.ID, x.ResultsURL, gw.URL)
		}
	}
}
