package pricing

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
)

// TestCostGolden prices usages by hand from the §7 sheet. A price of $P per
// MTok is P × 1,000 nano-USD per token.
func TestCostGolden(t *testing.T) {
	tb := mustDefault(t)
	tests := []struct {
		name      string
		u         meter.Usage
		at        time.Time
		want      money.Nanos
		wantComps comps
	}{
		{
			// 1,000,000 input on sonnet-4-6 at $3 = 3,000,000,000;
			// 1,000 output at $15/MTok = $0.015 = 15,000,000.
			name:      "plain text",
			u:         meter.Usage{Model: "claude-sonnet-4-6", InputTokens: 1_000_000, OutputTokens: 1_000},
			want:      3_015_000_000,
			wantComps: comps{Input: 3_000_000_000, Output: 15_000_000},
		},
		{
			// 10,000 5m writes at $3.75/MTok = $0.0375 = 37,500,000.
			name: "cache write 5m from split",
			u: meter.Usage{Model: "claude-sonnet-4-6", CacheCreationInputTokens: 10_000,
				CacheCreationSplit: true, CacheWrite5mTokens: 10_000},
			want:      37_500_000,
			wantComps: comps{CacheWrite5m: 37_500_000},
		},
		{
			// 10,000 1h writes at $6/MTok = $0.06 = 60,000,000.
			name: "cache write 1h from split",
			u: meter.Usage{Model: "claude-sonnet-4-6", CacheCreationInputTokens: 10_000,
				CacheCreationSplit: true, CacheWrite1hTokens: 10_000},
			want:      60_000_000,
			wantComps: comps{CacheWrite1h: 60_000_000},
		},
		{
			// No split: all 10,000 writes are 5m, $3.75/MTok = 37,500,000.
			name:      "cache write without split is 5m",
			u:         meter.Usage{Model: "claude-sonnet-4-6", CacheCreationInputTokens: 10_000},
			want:      37_500_000,
			wantComps: comps{CacheWrite5m: 37_500_000},
		},
		{
			// Total 12,000 but split says 10,000 5m: the 2,000 excess is 1h.
			// 10,000 × $3.75 = 37,500,000; 2,000 × $6/MTok = $0.012 = 12,000,000.
			name: "split below total bills the excess at 1h",
			u: meter.Usage{Model: "claude-sonnet-4-6", CacheCreationInputTokens: 12_000,
				CacheCreationSplit: true, CacheWrite5mTokens: 10_000},
			want:      49_500_000,
			wantComps: comps{CacheWrite5m: 37_500_000, CacheWrite1h: 12_000_000},
		},
		{
			// 1,000,000 cache reads on haiku-4-5 at $0.10 = 100,000,000.
			name:      "cache read",
			u:         meter.Usage{Model: "claude-haiku-4-5", CacheReadInputTokens: 1_000_000},
			want:      100_000_000,
			wantComps: comps{CacheRead: 100_000_000},
		},
		{
			// Sonnet 5.5 reads at $0.20 before 2026-10-07: 1,000,000 = 200,000,000.
			name:      "sonnet-5-5 cache read on 2026-10-06",
			u:         meter.Usage{Model: "claude-sonnet-5-5", CacheReadInputTokens: 1_000_000},
			at:        time.Date(2026, 10, 6, 12, 0, 0, 0, time.UTC),
			want:      200_000_000,
			wantComps: comps{CacheRead: 200_000_000},
		},
		{
			name:      "sonnet-5-5 cache read at the last nanosecond of 2026-10-06",
			u:         meter.Usage{Model: "claude-sonnet-5-5", CacheReadInputTokens: 1_000_000},
			at:        time.Date(2026, 10, 6, 23, 59, 59, 999_999_999, time.UTC),
			want:      200_000_000,
			wantComps: comps{CacheRead: 200_000_000},
		},
		{
			// $0.10 from 00:00 UTC on 2026-10-07: 1,000,000 = 100,000,000.
			name:      "sonnet-5-5 cache read on 2026-10-07",
			u:         meter.Usage{Model: "claude-sonnet-5-5", CacheReadInputTokens: 1_000_000},
			at:        time.Date(2026, 10, 7, 0, 0, 0, 0, time.UTC),
			want:      100_000_000,
			wantComps: comps{CacheRead: 100_000_000},
		},
		{
			// 01:00 on the 7th in UTC+2 is 23:00 UTC on the 6th: old price.
			name:      "sonnet-5-5 dates are UTC days",
			u:         meter.Usage{Model: "claude-sonnet-5-5", CacheReadInputTokens: 1_000_000},
			at:        time.Date(2026, 10, 7, 1, 0, 0, 0, time.FixedZone("UTC+2", 2*3600)),
			want:      200_000_000,
			wantComps: comps{CacheRead: 200_000_000},
		},
		{
			// 1,000 input at $3/MTok = 3,000,000; 3 searches × $0.01 = 30,000,000.
			name:      "web search",
			u:         meter.Usage{Model: "claude-sonnet-4-6", InputTokens: 1_000, WebSearchRequests: 3, WebFetchRequests: 5},
			want:      33_000_000,
			wantComps: comps{Input: 3_000_000, WebSearch: 30_000_000},
		},
		{
			// Multipliers skip the search fee: 1,000 input at $5 × 1.1 × 0.5 =
			// $0.00275 = 2,750,000; 2 searches = 20,000,000 flat.
			name: "web search fee is flat under geo and batch",
			u: meter.Usage{Model: "claude-opus-4-6", InputTokens: 1_000, WebSearchRequests: 2,
				InferenceGeo: "us", ServiceTier: "batch"},
			want:      22_750_000,
			wantComps: comps{Input: 2_750_000, WebSearch: 20_000_000},
		},
		{
			// Batch: 1,000,000 in at $1.50 + 1,000,000 out at $7.50 = $9.
			name: "batch",
			u: meter.Usage{Model: "claude-sonnet-4-6", InputTokens: 1_000_000, OutputTokens: 1_000_000,
				ServiceTier: "batch"},
			want:      9_000_000_000,
			wantComps: comps{Input: 1_500_000_000, Output: 7_500_000_000},
		},
		{
			// Batch stacks with caching: 1,000,000 reads at $0.10 × 0.5 = 50,000,000.
			name:      "batch cache read",
			u:         meter.Usage{Model: "claude-haiku-4-5", CacheReadInputTokens: 1_000_000, ServiceTier: "batch"},
			want:      50_000_000,
			wantComps: comps{CacheRead: 50_000_000},
		},
		{
			name:      "priority tier is billed at standard rates",
			u:         meter.Usage{Model: "claude-sonnet-4-6", InputTokens: 1_000_000, ServiceTier: "priority"},
			want:      3_000_000_000,
			wantComps: comps{Input: 3_000_000_000},
		},
		{
			// us on opus-4-6: 1,000,000 in at $5 × 1.1 = 5,500,000,000;
			// 100,000 out at $25 = $2.50 × 1.1 = 2,750,000,000.
			name: "data residency us on opus-4-6",
			u: meter.Usage{Model: "claude-opus-4-6", InputTokens: 1_000_000, OutputTokens: 100_000,
				InferenceGeo: "us"},
			want:      8_250_000_000,
			wantComps: comps{Input: 5_500_000_000, Output: 2_750_000_000},
		},
		{
			name: "data residency global on opus-4-6",
			u: meter.Usage{Model: "claude-opus-4-6", InputTokens: 1_000_000, OutputTokens: 100_000,
				InferenceGeo: "global"},
			want:      7_500_000_000,
			wantComps: comps{Input: 5_000_000_000, Output: 2_500_000_000},
		},
		{
			// haiku-4-5 predates 4.6: us changes nothing. 1,000,000 in at $1 +
			// 100,000 out at $5 = $0.50.
			name: "data residency us on haiku-4-5",
			u: meter.Usage{Model: "claude-haiku-4-5", InputTokens: 1_000_000, OutputTokens: 100_000,
				InferenceGeo: "us"},
			want:      1_500_000_000,
			wantComps: comps{Input: 1_000_000_000, Output: 500_000_000},
		},
		{
			// Fast opus-5-5: 1,000,000 in at $8; 100,000 out at $40 = $4.
			name: "fast opus-5-5 text",
			u: meter.Usage{Model: "claude-opus-5-5", InputTokens: 1_000_000, OutputTokens: 100_000,
				Speed: "fast"},
			want:      12_000_000_000,
			wantComps: comps{Input: 8_000_000_000, Output: 4_000_000_000},
		},
		{
			// Fast cache rates derive from $8: 5m × 1.25 = $10, 1h × 2 = $16,
			// read × 0.05 = $0.40; 1,000,000 of each.
			name: "fast opus-5-5 cache",
			u: meter.Usage{Model: "claude-opus-5-5", CacheCreationInputTokens: 2_000_000, CacheCreationSplit: true,
				CacheWrite5mTokens: 1_000_000, CacheWrite1hTokens: 1_000_000, CacheReadInputTokens: 1_000_000, Speed: "fast"},
			want:      26_400_000_000,
			wantComps: comps{CacheWrite5m: 10_000_000_000, CacheWrite1h: 16_000_000_000, CacheRead: 400_000_000},
		},
		{
			// Fast stacks with us: 1,000,000 in at $8 × 1.1 = $8.80.
			name:      "fast opus-5-5 with data residency",
			u:         meter.Usage{Model: "claude-opus-5-5", InputTokens: 1_000_000, Speed: "fast", InferenceGeo: "us"},
			want:      8_800_000_000,
			wantComps: comps{Input: 8_800_000_000},
		},
		{
			name:      "standard opus-5-5",
			u:         meter.Usage{Model: "claude-opus-5-5", InputTokens: 1_000_000, Speed: "standard"},
			want:      4_000_000_000,
			wantComps: comps{Input: 4_000_000_000},
		},
		{
			// Fast opus-5 reads at $10 × 0.1 = $1: 1,000,000 = 1,000,000,000;
			// 1,000,000 out at $50.
			name: "fast opus-5",
			u: meter.Usage{Model: "claude-opus-5", CacheReadInputTokens: 1_000_000, OutputTokens: 1_000_000,
				Speed: "fast"},
			want:      51_000_000_000,
			wantComps: comps{CacheRead: 1_000_000_000, Output: 50_000_000_000},
		},
		{
			// Opus 4.6 bills fast requests at standard: 1,000,000 in at $5.
			name:      "fast on opus-4-6 bills standard",
			u:         meter.Usage{Model: "claude-opus-4-6", InputTokens: 1_000_000, Speed: "fast"},
			want:      5_000_000_000,
			wantComps: comps{Input: 5_000_000_000},
		},
		{
			// Prompt exactly 100,000: low tier. 100,000 in at $0.10 = $0.01 =
			// 10,000,000; 1,000 out at $0.50 = $0.0005 = 500,000.
			name:      "haiku-5-5 prompt of 100,000 is the low tier",
			u:         meter.Usage{Model: "claude-haiku-5-5", InputTokens: 100_000, OutputTokens: 1_000},
			want:      10_500_000,
			wantComps: comps{Input: 10_000_000, Output: 500_000},
		},
		{
			// Prompt 90,001 + 10,000 reads = 100,001: every token high tier.
			// 90,001 in at $0.50 = $0.0450005 = 45,000,500; 10,000 reads at
			// $0.05 = 500,000; 1,000 out at $2.50 = 2,500,000.
			name: "haiku-5-5 prompt of 100,001 is the high tier",
			u: meter.Usage{Model: "claude-haiku-5-5", InputTokens: 90_001, CacheReadInputTokens: 10_000,
				OutputTokens: 1_000},
			want:      48_000_500,
			wantComps: comps{Input: 45_000_500, CacheRead: 500_000, Output: 2_500_000},
		},
		{
			// Cache writes count toward the prompt: 1 + 100,000 = 100,001.
			// 1 in at $0.50 = 500; 100,000 5m writes at $0.625 = 62,500,000.
			name:      "haiku-5-5 cache writes count toward the prompt",
			u:         meter.Usage{Model: "claude-haiku-5-5", InputTokens: 1, CacheCreationInputTokens: 100_000},
			want:      62_500_500,
			wantComps: comps{Input: 500, CacheWrite5m: 62_500_000},
		},
		{
			// Fast has no effect on a model without fast rates; the tier still applies.
			name:      "haiku-5-5 fast is ignored",
			u:         meter.Usage{Model: "claude-haiku-5-5", InputTokens: 100_001, Speed: "fast"},
			want:      50_000_500,
			wantComps: comps{Input: 50_000_500},
		},
		{
			// 1 input token at $0.10/MTok = $0.0000001 = 100 nanos, exact.
			name:      "one haiku-5-5 token is exact",
			u:         meter.Usage{Model: "claude-haiku-5-5", InputTokens: 1},
			want:      100,
			wantComps: comps{Input: 100},
		},
		{
			// 1 5m write at $0.125/MTok = $0.000000125 = 125 nanos, exact.
			name:      "one haiku-5-5 5m write is exact",
			u:         meter.Usage{Model: "claude-haiku-5-5", CacheCreationInputTokens: 1},
			want:      125,
			wantComps: comps{CacheWrite5m: 125},
		},
		{
			// 1 read at $0.01/MTok = 10 nanos × 1.1 × 0.5 = 5.5 → rounds up to 6.
			name:      "fractional nano rounds up",
			u:         meter.Usage{Model: "claude-haiku-5-5", CacheReadInputTokens: 1, InferenceGeo: "us", ServiceTier: "batch"},
			want:      6,
			wantComps: comps{CacheRead: 6},
		},
		{
			// 3 5m writes at 125 nanos × 0.55 = 206.25, 1 read at 10 × 0.55 =
			// 5.5: exact sum 211.75 → Total 212; components round up alone to
			// 207 and 6 (sum 213, one more than Total).
			name: "total rounds once, components each",
			u: meter.Usage{Model: "claude-haiku-5-5", CacheCreationInputTokens: 3, CacheReadInputTokens: 1,
				InferenceGeo: "us", ServiceTier: "batch"},
			want:      212,
			wantComps: comps{CacheWrite5m: 207, CacheRead: 6},
		},
		{
			name: "zero usage is free",
			u:    meter.Usage{Model: "claude-opus-4-8"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := tt.at
			if at.IsZero() {
				at = nov15
			}
			got, err := tb.Cost(tt.u, at)
			if err != nil {
				t.Fatalf("Cost: %v", err)
			}
			if got.Total != tt.want {
				t.Errorf("Total = %d, want %d", got.Total, tt.want)
			}
			if diff := cmp.Diff(tt.wantComps, got.Components); diff != "" {
				t.Errorf("Components (-want +got):\n%s", diff)
			}
			if got.ChargedAsMax {
				t.Error("ChargedAsMax on a known model")
			}
			if want, _ := tb.Canonical(tt.u.Model); got.Model != want {
				t.Errorf("Model = %q, want %q", got.Model, want)
			}
			var sum money.Nanos
			for _, c := range got.Components {
				sum += c
			}
			if sum < got.Total || sum-got.Total >= money.Nanos(NumComponents) {
				t.Errorf("components sum %d vs Total %d: want 0 <= diff < %d", sum, got.Total, NumComponents)
			}
		})
	}
}
