package pricing

import (
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

func BenchmarkCost(b *testing.B) {
	tb := mustDefault(b)
	u := meter.Usage{
		Model: "claude-sonnet-5-5", InputTokens: 12, CacheCreationInputTokens: 2048, CacheReadInputTokens: 10240,
		CacheCreationSplit: true, CacheWrite5mTokens: 2048, OutputTokens: 350, WebSearchRequests: 1,
		ServiceTier: "standard", InferenceGeo: "us",
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tb.Cost(u, nov15); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCostChargeMax prices an unknown model at every known one.
func BenchmarkCostChargeMax(b *testing.B) {
	tb, err := New(mustDefault(b), policy.Pricing{UnknownModel: policy.UnknownChargeMax})
	if err != nil {
		b.Fatal(err)
	}
	u := meter.Usage{Model: "claude-unknown", InputTokens: 1000, OutputTokens: 350}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tb.Cost(u, nov15); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEstimate(b *testing.B) {
	tb := mustDefault(b)
	r := Request{Model: "claude-opus-5-5", PromptBytes: 40_000, MaxTokens: 8_192, Fast: true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tb.Estimate(r, nov15); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDefault(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Default(); err != nil {
			b.Fatal(err)
		}
	}
}
