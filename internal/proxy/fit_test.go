package proxy

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

func TestRewriteMaxTokens(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"model":"m", "max_tokens" : 32000,"messages":[{"content":"max_tokens 5"}]}`,
			`{"model":"m", "max_tokens" : 900,"messages":[{"content":"max_tokens 5"}]}`},
		{`{"max_tokens":1e5,"thinking":{"type":"enabled","budget_tokens":16000},"x":{"budget_tokens":3}}`,
			`{"max_tokens":900,"thinking":{"type":"enabled","budget_tokens":450},"x":{"budget_tokens":3}}`},
		// The parser takes the last of duplicate and case-variant keys; every
		// one of them is lowered, so the upstream sees the fitted value
		// whichever it reads.
		{`{"max_tokens":5000,"Max_Tokens":6000,"max\u005ftokens":7000}`, `{"max_tokens":900,"Max_Tokens":900,"max\u005ftokens":900}`},
	} {
		got, ok := rewriteMaxTokens([]byte(tt.in), 900, 450)
		if !ok || string(got) != tt.want {
			t.Errorf("rewrite(%s) = %s, %v; want %s", tt.in, got, ok, tt.want)
		}
	}
	if _, ok := rewriteMaxTokens([]byte(`{"model":"m"}`), 900, 0); ok {
		t.Error("rewrite of a body without max_tokens succeeded")
	}
}

func TestFitFloorAndThinking(t *testing.T) {
	r := parsedRequest{MaxTokens: 32000, ThinkingBudget: 16000}
	if got := fitFloor(r, 1024); got != 2048 {
		t.Errorf("floor with thinking 16000 of 32000 = %d, want 2048 (half of it thinks, at least 1024)", got)
	}
	if got := thinkingFor(r, 2048); got != 1024 {
		t.Errorf("thinking at 2048 = %d, want 1024", got)
	}
	small := parsedRequest{MaxTokens: 32000, ThinkingBudget: 2000}
	if got := fitFloor(small, 1024); got != 2001 {
		t.Errorf("floor with thinking 2000 of 32000 = %d, want 2001 (the budget kept whole)", got)
	}
	if got := thinkingFor(small, 10000); got != 2000 {
		t.Errorf("thinking 2000 at max_tokens 10000 = %d, want it kept", got)
	}
	if got := fitFloor(parsedRequest{MaxTokens: 5000, ThinkingBudget: 5000}, 1024); got != -1 {
		t.Errorf("budget not below max_tokens: floor %d, want -1 (never fitted)", got)
	}
	if f := fitFor(parsedRequest{MaxTokens: 1024}, pricing.Split{Fixed: 1, PerToken: 1}, 1025, 1024); f.PerUnit != 0 {
		t.Errorf("max_tokens at the floor was made fittable: %+v", f)
	}
}

func TestFitLowersMaxTokensToTheRoomLeft(t *testing.T) {
	rig := newFitRig(t, "fit_max_tokens: true")
	body := agentBody(32000, "")
	rig.leave(t, promptBound(body)+10_000*15_000+7_000)
	w := post(rig.h, body)
	if w.Code != http.StatusOK || w.Header().Get("clade-max-tokens-fitted") != "10000" {
		t.Fatalf("got %d, fitted %q: %s", w.Code, w.Header().Get("clade-max-tokens-fitted"), w.Body)
	}
	if want := strings.Replace(body, `"max_tokens":32000`, `"max_tokens":10000`, 1); rig.lastBody() != want {
		t.Errorf("forwarded body differs from the client's by more than max_tokens:\n%s", rig.lastBody())
	}
	if n := testutil.ToFloat64(rig.h.m.fitted.WithLabelValues("agent", "claude-sonnet-4-6")); n != 1 {
		t.Errorf("fitted metric = %v, want 1", n)
	}
	// A request that fits whole is not touched.
	rig.leave(t, money.USD(5))
	w = post(rig.h, body)
	if w.Code != http.StatusOK || w.Header().Get("clade-max-tokens-fitted") != "" || rig.lastBody() != body {
		t.Errorf("a request that fits was changed: %d %q", w.Code, w.Header().Get("clade-max-tokens-fitted"))
	}
}

func TestFitThinkingBudgetIsLowered(t *testing.T) {
	rig := newFitRig(t, "fit_max_tokens: true")
	body := agentBody(32000, `"thinking":{"type":"enabled","budget_tokens":16000},`)
	rig.leave(t, promptBound(body)+4_000*15_000)
	w := post(rig.h, body)
	if w.Code != http.StatusOK || w.Header().Get("clade-max-tokens-fitted") != "4000" {
		t.Fatalf("got %d, fitted %q: %s", w.Code, w.Header().Get("clade-max-tokens-fitted"), w.Body)
	}
	if !strings.Contains(rig.lastBody(), `"max_tokens":4000,"thinking":{"type":"enabled","budget_tokens":2000}`) {
		t.Errorf("forwarded %s", rig.lastBody()[:120])
	}
	// Room for 2,000 tokens: the thinking budget would fall to 1,000,
	// under the API's minimum of 1,024, so the request is refused.
	rig.leave(t, promptBound(body)+2_000*15_000)
	r := decodeRefusal(t, post(rig.h, body))
	if r.Error.Details.MaxTokensThatFit == nil || *r.Error.Details.MaxTokensThatFit != 2000 {
		t.Errorf("refusal details %+v", r.Error.Details)
	}
}

func TestFitFloorRefusesWithWhatFits(t *testing.T) {
	rig := newFitRig(t, "fit_max_tokens: true\nmin_max_tokens: 1024")
	body := agentBody(32000, "")
	rig.leave(t, promptBound(body)+1_000*15_000)
	r := decodeRefusal(t, post(rig.h, body))
	d := r.Error.Details
	needed := promptBound(body) + 32_000*15_000
	if d.ErrorCode != "budget_exceeded" || d.NeededUSD.String() != needed.String() ||
		d.RemainingUSD.String() != (promptBound(body)+15_000_000).String() || d.MaxTokensThatFit == nil || *d.MaxTokensThatFit != 1000 {
		t.Errorf("details %+v, want needed %s, max_tokens_that_fit 1000", d, needed)
	}
	if !strings.Contains(r.Error.Message, "has reached") || !strings.Contains(r.Error.Message, "smallest useful request") {
		t.Errorf("message %q", r.Error.Message)
	}
	if rig.f.Messages() != 0 {
		t.Error("a refused request reached the upstream")
	}
}

func TestFitPromptAloneDoesNotFit(t *testing.T) {
	rig := newFitRig(t, "fit_max_tokens: true")
	body := agentBody(32000, "")
	rig.leave(t, promptBound(body)-1)
	rig.f.CountTokens = func([]byte) (int64, time.Duration) { return -1, 0 } // count_tokens fails: the byte bound stays
	r := decodeRefusal(t, post(rig.h, body))
	if d := r.Error.Details; d.MaxTokensThatFit == nil || *d.MaxTokensThatFit != 0 {
		t.Errorf("details %+v, want max_tokens_that_fit 0", d)
	}
	if !strings.Contains(r.Error.Message, "has reached") {
		t.Errorf("message %q", r.Error.Message)
	}
	if n := testutil.ToFloat64(rig.h.m.countTokens.WithLabelValues("error")); n != 1 {
		t.Errorf("count_tokens errors = %v, want 1", n)
	}
}

func TestFitRefusalWithRoomSaysWhatFits(t *testing.T) {
	rig := newFitRig(t, "") // fitting off: refused as before, but clearly
	body := agentBody(32000, "")
	rig.leave(t, promptBound(body)+20_000*15_000)
	r := decodeRefusal(t, post(rig.h, body))
	if strings.Contains(r.Error.Message, "has reached") || !strings.Contains(r.Error.Message, "max_tokens up to 20000 would fit") {
		t.Errorf("message %q", r.Error.Message)
	}
	if rig.f.CountTokensCalls() != 0 {
		t.Error("count_tokens called with fitting off")
	}
}

func TestFitCountTokensMakesItFit(t *testing.T) {
	rig := newFitRig(t, "fit_max_tokens: true")
	body := agentBody(32000, "")
	// Room for 1,100 tokens of prompt and 2,000 of output: the byte bound
	// (6,100+ tokens) does not fit, the count does.
	rig.leave(t, 1_100*3_000+2_000*15_000)
	rig.f.CountTokens = func(b []byte) (int64, time.Duration) {
		if strings.Contains(string(b), "max_tokens") {
			return -1, 0
		}
		return 1_000, 0
	}
	w := post(rig.h, body)
	// 1,000 counted + 1% + 16 = 1,026 tokens: (3,300,000 + 30,000,000 -
	// 3,078,000) / 15,000 = 2,014.
	if w.Code != http.StatusOK || w.Header().Get("clade-max-tokens-fitted") != "2014" {
		t.Fatalf("got %d, fitted %q: %s", w.Code, w.Header().Get("clade-max-tokens-fitted"), w.Body)
	}
	if n := rig.f.CountTokensCalls(); n != 1 {
		t.Errorf("count_tokens calls = %d, want 1", n)
	}
}

func TestFitCountTokensTimeoutKeepsTheByteBound(t *testing.T) {
	rig := newFitRig(t, "fit_max_tokens: true")
	body := agentBody(32000, "")
	rig.leave(t, 1_100*3_000+2_000*15_000)
	rig.f.CountTokens = func([]byte) (int64, time.Duration) { return 1_000, 10 * time.Second }
	start := time.Now()
	decodeRefusal(t, post(rig.h, body))
	if n := testutil.ToFloat64(rig.h.m.countTokens.WithLabelValues("timeout")); n != 1 {
		t.Errorf("count_tokens timeouts = %v, want 1", n)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusal took %v: the count_tokens timeout did not bound it", d)
	}
}

// A request refused only because requests in flight hold the room waits
// for them to settle, then fits.
func TestFitWaitsForHoldsInFlight(t *testing.T) {
	rig := newFitRig(t, "fit_max_tokens: true")
	body := agentBody(32000, "")
	rig.leave(t, promptBound(body)+3_000*15_000)
	other, err := rig.store.Reserve(context.Background(), budget.Hold{RequestID: "other", Budgets: []budget.Budget{rig.budget}, Amount: promptBound(body) + 2_000*15_000, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = rig.store.Settle(context.Background(), other, 1_000)
	}()
	w := post(rig.h, body)
	if w.Code != http.StatusOK || w.Header().Get("clade-max-tokens-fitted") == "" {
		t.Fatalf("got %d, fitted %q: %s", w.Code, w.Header().Get("clade-max-tokens-fitted"), w.Body)
	}
	if n := testutil.ToFloat64(rig.h.m.waited.WithLabelValues("agent")); n != 1 {
		t.Errorf("waits = %v, want 1", n)
	}
}

// Once a service is near its cap, count_tokens sizes the prompt before the
// hold is placed, so a fitted request is not shortened on the byte bound.
func TestFitNearCapCountsBeforeReserving(t *testing.T) {
	rig := newFitRig(t, "fit_max_tokens: true")
	body := agentBody(32000, "")
	room := promptBound(body) + 5_000*15_000
	rig.f.CountTokens = func([]byte) (int64, time.Duration) { return 1_000, 0 }
	rig.leave(t, room)
	w := post(rig.h, body)
	if w.Code != http.StatusOK || w.Header().Get("clade-max-tokens-fitted") != "5000" || rig.f.CountTokensCalls() != 0 {
		t.Fatalf("first request: %d, fitted %q, %d count_tokens calls; want fitted on the byte bound, no call",
			w.Code, w.Header().Get("clade-max-tokens-fitted"), rig.f.CountTokensCalls())
	}
	rig.leave(t, room)
	w = post(rig.h, body)
	// 1,026 tokens of prompt: (room - 3,078,000) / 15,000.
	want := strconv.FormatInt(int64(room-3_078_000)/15_000, 10)
	if w.Code != http.StatusOK || w.Header().Get("clade-max-tokens-fitted") != want || rig.f.CountTokensCalls() != 1 {
		t.Errorf("near the cap: %d, fitted %q (want %s), %d count_tokens calls (want 1)",
			w.Code, w.Header().Get("clade-max-tokens-fitted"), want, rig.f.CountTokensCalls())
	}
}

// A fitted request whose answer is lost is charged its fitted hold, not
// the worst case of the max_tokens the client asked for: the hold the
// store placed while the request was upstream, Fixed + fitted × PerToken
// of the request's split, also when the request names no inference_geo
// and both parts carry the 1.1x residency multiplier.
func TestFitChargeByEstimateIsTheFittedHold(t *testing.T) {
	tbl, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		body string
		us   bool
	}{
		{"global", agentBody(32000, ""), false},
		{"workspace default geography", strings.Replace(agentBody(32000, ""), `"inference_geo":"global",`, "", 1), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rig := newFitRig(t, "fit_max_tokens: true")
			room := promptBound(tt.body) + 5_000*15_000 + 3
			split, err := tbl.EstimateSplit(pricing.Request{Model: "claude-sonnet-4-6", PromptBytes: int64(len(tt.body)),
				InferenceGeoUS: tt.us, Cache: pricing.CacheNone}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			want, _ := split.For(int64(room-split.Fixed) / int64(split.PerToken))
			if !tt.us && want != promptBound(tt.body)+5_000*15_000 {
				t.Fatalf("global split %+v: hold %s, want the prompt bound and 5,000 output tokens", split, want)
			}
			rig.leave(t, room)
			before, err := rig.store.Status(context.Background(), []budget.Budget{rig.budget})
			if err != nil {
				t.Fatal(err)
			}
			rig.abort.Store(true)
			if w := post(rig.h, tt.body); w.Code != http.StatusBadGateway {
				t.Fatalf("got %d: %s", w.Code, w.Body)
			}
			rig.h.Wait()
			after, err := rig.store.Status(context.Background(), []budget.Budget{rig.budget})
			if err != nil {
				t.Fatal(err)
			}
			got, held := after[0].Spent-before[0].Spent, money.Nanos(rig.held.Load())
			if got != want || held != want || after[0].Reserved != 0 {
				t.Errorf("charged %s (held %s while upstream, reserved after %s), want the fitted hold %s", got, held, after[0].Reserved, want)
			}
		})
	}
}

// Output above the fitted max_tokens is impossible even though it is below
// the client's: the API was sent the fitted value. It is charged the
// fitted hold, never its face value above it.
func TestFitImpossibleUsageIsJudgedByTheFittedMaxTokens(t *testing.T) {
	body := agentBody(32000, "")
	rig, got := fittedCharge(t, body, fakeupstream.Behavior{
		Usage: fakeupstream.Usage{InputTokens: 1_000, OutputTokens: 9_000}, Impossible: true})
	if want := promptBound(body) + 5_000*15_000; got != want {
		t.Errorf("charged %s, want the fitted hold %s (9,000 output tokens would be %s)", got, want, money.Nanos(1_000*3_000+9_000*15_000))
	}
	if n := testutil.ToFloat64(rig.h.m.impossible.WithLabelValues(impossibleMaxTokens)); n != 1 {
		t.Errorf("impossible usage over max_tokens = %v, want 1", n)
	}
}

// An interrupted stream of a fitted request is charged its output up to
// the fitted max_tokens, the most the API could generate, not up to the
// client's.
func TestFitInterruptedStreamIsBoundedByTheFittedMaxTokens(t *testing.T) {
	body := agentBody(32000, `"stream":true,`)
	text := make([]string, 8)
	for i := range text {
		text[i] = strings.Repeat("y", 1_000)
	}
	// Events: message_start, content_block_start, ping, 8 text deltas;
	// the cut comes before content_block_stop, so 8,000 bytes were streamed.
	_, got := fittedCharge(t, body, fakeupstream.Behavior{
		Usage: fakeupstream.Usage{InputTokens: 1_000, OutputTokens: 9_000}, Text: text, CutAfterEvents: 11})
	if want := money.Nanos(1_000*3_000 + 5_000*15_000); got != want {
		t.Errorf("charged %s, want input and the fitted 5,000 output tokens %s", got, want)
	}
}
