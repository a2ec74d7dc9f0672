package e2e

import (
	"context"
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

// TestThreeReplicasWithGrantsHoldTheCap runs the replica race with admission
// grants, as the gateway ships with Redis (CLADE_GRANT_WINDOW unset, so
// 100ms): three processes, one Redis, the official
// SDK, 400 requests over 2 s against a cap of about 25 estimates. The
// cap must hold at every moment (spend plus holds and grants never above
// it), every admitted request must be charged exactly once at its actual
// cost, and every refusal must be a 402 the SDK does not retry.
func TestThreeReplicasWithGrantsHoldTheCap(t *testing.T) {
	f, up := startUpstream(t)
	f.Behave = func(*http.Request, string, bool) fakeupstream.Behavior {
		// Answers take a moment, so the watcher sees admissions overlap.
		return fakeupstream.Behavior{TTFB: 100 * time.Millisecond, Usage: fakeupstream.Usage{InputTokens: 1200, OutputTokens: 300}}
	}
	params := anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 300, Messages: userMsg("race")}
	est := sonnetEstimate(probeBodyLen(t, params), params.MaxTokens)
	limit := est*25 + est/2
	const key = "service/recommendation/total"
	gws := startReplicas(t, 3, up.URL, basePolicy(testpolicy.Total(limit.String())),
		"CLADE_GRANT_WINDOW", "") // empty is unset: the default

	counter := &countingTransport{rt: http.DefaultTransport.(*http.Transport).Clone()}
	hc := &http.Client{Transport: counter}
	clients := make([]anthropic.Client, len(gws))
	for i, gw := range gws {
		clients[i] = anthropic.NewClient(option.WithBaseURL(gw.URL), option.WithAPIKey(testutil.CanaryToken), option.WithHTTPClient(hc))
	}

	watchCtx, stopWatch := context.WithCancel(context.Background())
	var watched sync.WaitGroup
	var peak money.Nanos
	var polls int
	watched.Add(1)
	go func() {
		defer watched.Done()
		for i := 0; watchCtx.Err() == nil; i++ {
			if ls, err := budgetLevels(watchCtx, gws[i%len(gws)].AdminURL); err == nil {
				polls++
				peak = max(peak, ls[key].spent+ls[key].reserved)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	const n = 400
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 5 * time.Millisecond) // 400 requests over 2 s
			_, err := clients[i%len(clients)].Messages.New(context.Background(), params)
			var apiErr *anthropic.Error
			switch {
			case err == nil:
				admitted.Add(1)
			case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusPaymentRequired:
				refused.Add(1)
			default:
				t.Errorf("request %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	// Idle grants return their unused slices within a second or two;
	// then only what was spent remains.
	ok := int(admitted.Load())
	final := waitLevel(t, gws[0].AdminURL, key, money.Nanos(ok)*actualCost)
	stopWatch()
	watched.Wait()

	// A loaded CI machine answers few polls; the cap itself is enforced
	// in Redis, the watcher only looks from outside.
	if peak > limit || polls < 3 {
		t.Errorf("spent + reserved peaked at %s (limit %s) over %d polls", peak, limit, polls)
	}
	if ok+int(refused.Load()) != n || counter.n.Load() != n {
		t.Errorf("%d admitted + %d refused of %d, in %d HTTP attempts: each request must take exactly one", ok, refused.Load(), n, counter.n.Load())
	}
	if got := f.Truth()["responses"]; got != int64(ok) {
		t.Errorf("upstream answered %d requests, gateways admitted %d", got, ok)
	}
	// Settlements free what each estimate held beyond the actual cost, so
	// at least the 25 estimates fit; slices other replicas still held when
	// the cap came near may leave a few more unused.
	if ok < 20 || final.spent > limit {
		t.Errorf("admitted %d, spent %s of %s", ok, final.spent, limit)
	}
	var records int
	var steps float64
	for i, gw := range gws {
		records += strings.Count(gw.Spend.String(), `"total_usd":"`+actualCost.String()+`"`)
		if v, ok := value(scrape(t, gw.AdminURL), "clade_gateway_store_duration_seconds", map[string]string{"op": "grant"}); ok {
			steps += v
		}
		_, metrics := get(t, gw.AdminURL+"/metrics", "")
		for _, line := range strings.Split(metrics, "\n") {
			for _, bad := range []string{"clade_gateway_budget_overshoot_usd_total", "clade_gateway_orphaned_holds_total"} {
				if strings.HasPrefix(line, bad) && !strings.HasSuffix(line, " 0") {
					t.Errorf("replica %d: %s", i, line)
				}
			}
		}
		if err := gw.Stop(); err != nil {
			t.Errorf("replica %d did not shut down cleanly: %v", i, err)
		}
		assertNoLeak(t, fmt.Sprintf("replica %d logs", i), gw.Logs.String())
	}
	if records != ok {
		t.Errorf("%d spend records at %s for %d admitted requests", records, actualCost, ok)
	}
	if steps == 0 {
		t.Error("no replica ran a grant step: the default with Redis should admit from grants")
	}
	t.Logf("grants: %d requests over 3 replicas, %d admitted, %d refused, estimate %s, limit %s, spent %s, peak spent+reserved %s, %d polls",
		n, ok, refused.Load(), est, limit, final.spent, peak, polls)
}
