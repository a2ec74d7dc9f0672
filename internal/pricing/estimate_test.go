package pricing

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// TestEstimateGolden works the rule out by hand: prompt bound = bytes +
// 2,048 tokens at the 1h cache-write rate (2x input), plus max_tokens at the
// output rate.
func TestEstimateGolden(t *testing.T) {
	tb, err := New(mustDefault(t), policy.Pricing{Models: map[string]policy.ModelPrice{
		// $0.000125/MTok = 0.125 nanos per token.
		"tiny": {CacheWrite1h: 125_000},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		r    Request
		want money.Nanos
	}{
		{
			// 12,048 × $6/MTok = $0.072288 = 72,288,000; 1,000 × $15/MTok = 15,000,000.
			name: "sonnet-4-6",
			r:    Request{Model: "claude-sonnet-4-6", PromptBytes: 10_000, MaxTokens: 1_000},
			want: 87_288_000,
		},
		{
			name: "sonnet-4-6 batch halves it",
			r:    Request{Model: "claude-sonnet-4-6", PromptBytes: 10_000, MaxTokens: 1_000, Batch: true},
			want: 43_644_000,
		},
		{
			// + $0.50 allowance = 500,000,000.
			name: "server tools add the allowance",
			r: Request{Model: "claude-sonnet-4-6", PromptBytes: 10_000, MaxTokens: 1_000,
				ServerTools: true, Allowance: 500_000_000},
			want: 587_288_000,
		},
		{
			name: "allowance without server tools is ignored",
			r:    Request{Model: "claude-sonnet-4-6", PromptBytes: 10_000, MaxTokens: 1_000, Allowance: 500_000_000},
			want: 87_288_000,
		},
		{
			// Bound 97,952 + 2,048 = 100,000: not over, low tier. 100,000 × $0.20
			// = 20,000,000; 1,000 × $0.50 = 500,000.
			name: "haiku-5-5 bound at the threshold",
			r:    Request{Model: "claude-haiku-5-5", PromptBytes: 97_952, MaxTokens: 1_000},
			want: 20_500_000,
		},
		{
			// Bound 100,001: high tier. 100,001 × $1 = 100,001,000; 1,000 × $2.50 = 2,500,000.
			name: "haiku-5-5 bound over the threshold",
			r:    Request{Model: "claude-haiku-5-5", PromptBytes: 97_953, MaxTokens: 1_000},
			want: 102_501_000,
		},
		{
			// Fast 1h write is 2 × $8 = $16: 10,000 × $16 = 160,000,000;
			// 1,000 × $40 = 40,000,000.
			name: "opus-5-5 fast",
			r:    Request{Model: "claude-opus-5-5", PromptBytes: 7_952, MaxTokens: 1_000, Fast: true},
			want: 200_000_000,
		},
		{
			name: "opus-5-5 fast us",
			r:    Request{Model: "claude-opus-5-5", PromptBytes: 7_952, MaxTokens: 1_000, Fast: true, InferenceGeoUS: true},
			want: 220_000_000,
		},
		{
			// 10,000 × $8 = 80,000,000; 1,000 × $20 = 20,000,000.
			name: "opus-5-5 standard",
			r:    Request{Model: "claude-opus-5-5", PromptBytes: 7_952, MaxTokens: 1_000},
			want: 100_000_000,
		},
		{
			// No fast rates: 10,000 × $10 = 100,000,000; 1,000 × $25 = 25,000,000.
			name: "opus-4-6 fast is standard",
			r:    Request{Model: "claude-opus-4-6", PromptBytes: 7_952, MaxTokens: 1_000, Fast: true},
			want: 125_000_000,
		},
		{
			// Not flagged: 12,048 × $2 = 24,096,000; 1,000 × $5 = 5,000,000.
			name: "haiku-4-5 us is unchanged",
			r:    Request{Model: "claude-haiku-4-5", PromptBytes: 10_000, MaxTokens: 1_000, InferenceGeoUS: true},
			want: 29_096_000,
		},
		{
			// 2,049 × 0.125 nanos = 256.125 → 257.
			name: "rounds up",
			r:    Request{Model: "tiny", PromptBytes: 1},
			want: 257,
		},
		{
			// (2^40 - 2,048) + 2,048 = 2^40 prompt at $30 + 2^40 out at $75:
			// 1,099,511,627,776 × 105,000 nanos = 115,448,720,916,480,000.
			name: "largest request",
			r:    Request{Model: "claude-opus-4-1", PromptBytes: MaxCount - PromptOverheadTokens, MaxTokens: MaxCount},
			want: 115_448_720_916_480_000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tb.Estimate(tt.r, nov15)
			if err != nil {
				t.Fatalf("Estimate: %v", err)
			}
			if got != tt.want {
				t.Errorf("Estimate = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestEstimateErrors(t *testing.T) {
	tb := mustDefault(t)
	for _, r := range []Request{
		{Model: "claude-opus-4-6", PromptBytes: -1},
		{Model: "claude-opus-4-6", MaxTokens: -1},
		{Model: "claude-opus-4-6", PromptBytes: MaxCount - PromptOverheadTokens + 1},
		{Model: "claude-opus-4-6", MaxTokens: MaxCount + 1},
		{Model: "claude-opus-4-6", Allowance: -1},
		{Model: "claude-opus-4-6", ServerTools: true, Allowance: math.MaxInt64},
	} {
		if _, err := tb.Estimate(r, nov15); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("Estimate(%+v): err = %v, want ErrOutOfRange", r, err)
		}
	}
	if _, err := tb.Estimate(Request{Model: "claude-mythos-preview"}, nov15); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("Estimate of unknown model: err = %v, want ErrUnknownModel", err)
	}
	max, err := New(tb, policy.Pricing{UnknownModel: policy.UnknownChargeMax})
	if err != nil {
		t.Fatal(err)
	}
	// Dearest input-side rate known is Opus 4.1's 1h write at $30:
	// 2,048 × $30/MTok = $0.06144 = 61,440,000.
	got, err := max.Estimate(Request{Model: "claude-mythos-preview"}, nov15)
	if err != nil || got != 61_440_000 {
		t.Errorf("charge_max Estimate = %d, %v; want 61,440,000", got, err)
	}
}

// TestEstimateBoundsCost draws usages that fit each request (prompt tokens
// at most bytes + 2,048, output at most max_tokens, flags the request
// allows; a Batch request's results are always batch tier) and checks the
// estimate is never below the cost.
func TestEstimateBoundsCost(t *testing.T) {
	base := mustDefault(t)
	// An override that puts haiku-5-5's standard rates above its long tier
	// checks the estimate takes the worse of the two.
	odd, err := New(base, policy.Pricing{Models: map[string]policy.ModelPrice{
		"claude-haiku-5-5": {Input: money.USD(5), Output: money.USD(25), CacheWrite5m: 6_250_000_000, CacheWrite1h: money.USD(10), CacheRead: 500_000_000},
	}, UnknownModel: policy.UnknownChargeMax})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	n := 0
	for _, tb := range []*Table{base, odd} {
		for _, name := range append(tb.Models(), "some-unknown-model") {
			if name == "some-unknown-model" && tb.UnknownModel() != policy.UnknownChargeMax {
				continue
			}
			for range 300 {
				r := Request{
					Model:          name,
					PromptBytes:    rng.Int64N(250_000),
					MaxTokens:      rng.Int64N(64_000),
					InferenceGeoUS: rng.IntN(2) == 0,
					Fast:           rng.IntN(2) == 0,
					Batch:          rng.IntN(2) == 0,
				}
				prompt := r.PromptBytes + PromptOverheadTokens
				in := rng.Int64N(prompt + 1)
				cw := rng.Int64N(prompt - in + 1)
				cr := rng.Int64N(prompt - in - cw + 1)
				w1 := rng.Int64N(cw + 1)
				u := meter.Usage{
					Model: name, InputTokens: in, CacheCreationInputTokens: cw, CacheReadInputTokens: cr,
					OutputTokens: rng.Int64N(r.MaxTokens + 1), CacheCreationSplit: rng.IntN(2) == 0,
					CacheWrite1hTokens: w1, CacheWrite5mTokens: cw - w1,
				}
				if r.InferenceGeoUS && rng.IntN(4) != 0 {
					u.InferenceGeo = "us"
				}
				if r.Fast && rng.IntN(4) != 0 {
					u.Speed = "fast"
				}
				if r.Batch {
					// Batch results always report the batch tier: the estimate
					// counts on the discount.
					u.ServiceTier = "batch"
				}
				est, err := tb.Estimate(r, nov15)
				if err != nil {
					t.Fatalf("Estimate(%+v): %v", r, err)
				}
				c, err := tb.Cost(u, nov15)
				if err != nil {
					t.Fatalf("Cost(%+v): %v", u, err)
				}
				if c.Total > est {
					t.Fatalf("Cost %d above Estimate %d\nrequest %+v\nusage %+v", c.Total, est, r, u)
				}
				n++
			}
		}
	}
	t.Logf("%d request/usage pairs checked", n)
}
