package pricing

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// TestEstimateCacheRates: 12,048 prompt tokens at input $3, 5m write $3.75
// or 1h write $6 per MTok, plus 1,000 output tokens at $15.
func TestEstimateCacheRates(t *testing.T) {
	tb := mustDefault(t)
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		cache PromptCache
		want  money.Nanos
	}{
		{CacheNone, 36_144_000 + 15_000_000},
		{Cache5m, 45_180_000 + 15_000_000},
		{CacheAny, 72_288_000 + 15_000_000},
	} {
		got, err := tb.Estimate(Request{Model: "claude-sonnet-4-6", PromptBytes: 10_000, MaxTokens: 1_000, Cache: tt.cache}, at)
		if err != nil || got != tt.want {
			t.Errorf("cache %d: Estimate = %s, %v; want %s", tt.cache, got, err, tt.want)
		}
	}
}

// TestSplitBoundsEstimate: Fixed + k×PerToken is never below the estimate
// with max_tokens k, for every model, tier and multiplier, and is exactly
// it when the output price is a whole number of nano-USD per token.
func TestSplitBoundsEstimate(t *testing.T) {
	tb, err := New(mustDefault(t), policy.Pricing{UnknownModel: policy.UnknownChargeMax, Models: map[string]policy.ModelPrice{
		"odd": {Input: 1_234_567, Output: 7_654_321, CacheWrite5m: 1_500_000, CacheWrite1h: 2_000_001},
	}})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	models := append(tb.Models(), "not-a-model")
	for i := 0; i < 5000; i++ {
		r := Request{
			Model:          models[rng.IntN(len(models))],
			PromptBytes:    rng.Int64N(400_000),
			InferenceGeoUS: rng.IntN(2) == 0,
			Fast:           rng.IntN(2) == 0,
			Batch:          rng.IntN(3) == 0,
			Cache:          PromptCache(rng.IntN(3)),
			ServerTools:    rng.IntN(4) == 0,
			Allowance:      500_000_000,
		}
		s, err := tb.EstimateSplit(r, at)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []int64{0, 1, 1024, rng.Int64N(200_000)} {
			r.MaxTokens = k
			est, err := tb.Estimate(r, at)
			if err != nil {
				t.Fatal(err)
			}
			bound, ok := s.For(k)
			if !ok || bound < est {
				t.Fatalf("%+v: split %+v gives %s for max_tokens %d, below the estimate %s", r, s, bound, k, est)
			}
			if bound-est > money.Nanos(k)+1 {
				t.Fatalf("%+v: split %+v gives %s for max_tokens %d, more than a nano-USD per token above %s", r, s, bound, k, est)
			}
		}
	}
	s, err := tb.EstimateSplit(Request{Model: "claude-sonnet-4-6", PromptBytes: 10_000}, at)
	if err != nil || s != (Split{Fixed: 72_288_000, PerToken: 15_000}) {
		t.Errorf("sonnet-4-6 split = %+v, %v", s, err)
	}
}
