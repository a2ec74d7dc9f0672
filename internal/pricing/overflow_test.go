package pricing

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

func TestCostOverflow(t *testing.T) {
	tb := mustDefault(t)
	const n = MaxCount // 2^40 = 1,099,511,627,776
	all := func(model string) meter.Usage {
		return meter.Usage{Model: model, InputTokens: n, OutputTokens: n, CacheReadInputTokens: n,
			CacheCreationInputTokens: n, CacheCreationSplit: true, CacheWrite5mTokens: n, CacheWrite1hTokens: n}
	}
	tests := []struct {
		name      string
		u         meter.Usage
		want      money.Nanos
		wantComps comps
	}{
		{
			// Opus 4.1, 2^40 of each kind; the split (2^41) is above the total,
			// so both TTLs bill 2^40. Per token: $15 = 15,000 nanos, $18.75 =
			// 18,750, $30 = 30,000, $1.50 = 1,500, $75 = 75,000; sum 140,250.
			// 1,099,511,627,776 × 140,250 = 154,206,505,795,584,000.
			name: "opus-4-1 all kinds at 2^40",
			u:    all("claude-opus-4-1"),
			want: 154_206_505_795_584_000,
			wantComps: comps{
				Input:        16_492_674_416_640_000,
				CacheWrite5m: 20_615_843_020_800_000,
				CacheWrite1h: 32_985_348_833_280_000,
				CacheRead:    1_649_267_441_664_000,
				Output:       82_463_372_083_200_000,
			},
		},
		{
			// Opus 5 fast with us: (10 + 12.5 + 20 + 1 + 50) × 1.1 = $102.85/MTok,
			// 102,850 nanos per token × 2^40 = 113,084,770,916,761,600.
			name: "opus-5 fast us at 2^40",
			u: func() meter.Usage {
				u := all("claude-opus-5")
				u.Speed, u.InferenceGeo = "fast", "us"
				return u
			}(),
			want: 113_084_770_916_761_600,
			wantComps: comps{
				Input:        12_094_627_905_536_000,
				CacheWrite5m: 15_118_284_881_920_000,
				CacheWrite1h: 24_189_255_811_072_000,
				CacheRead:    1_209_462_790_553_600,
				Output:       60_473_139_527_680_000,
			},
		},
		{
			// The largest search count that fits, plus 1 haiku-5-5 token (100):
			// 9,223,372,036,850,000,100, 4,775,707 below MaxInt64.
			name:      "web searches up to the cap",
			u:         meter.Usage{Model: "claude-haiku-5-5", InputTokens: 1, WebSearchRequests: 922_337_203_685},
			want:      9_223_372_036_850_000_100,
			wantComps: comps{Input: 100, WebSearch: 9_223_372_036_850_000_000},
		},
		{
			// 2^39 searches × 10,000,000 = 5,497,558,138,880,000,000 still fits.
			name:      "2^39 web searches",
			u:         meter.Usage{Model: "claude-opus-4-6", WebSearchRequests: n / 2},
			want:      5_497_558_138_880_000_000,
			wantComps: comps{WebSearch: 5_497_558_138_880_000_000},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tb.Cost(tt.u, nov15)
			if err != nil {
				t.Fatalf("Cost: %v", err)
			}
			if got.Total != tt.want {
				t.Errorf("Total = %d, want %d", got.Total, tt.want)
			}
			if diff := cmp.Diff(tt.wantComps, got.Components); diff != "" {
				t.Errorf("Components (-want +got):\n%s", diff)
			}
		})
	}

	huge, err := New(tb, policy.Pricing{Models: map[string]policy.ModelPrice{
		"huge": {Input: 1<<63 - 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		u    meter.Usage
	}{
		// 2^40 × $0.01 = $10,995,116,277.76 > MaxInt64 nanos ($9,223,372,036.85).
		{"2^40 web searches", meter.Usage{Model: "claude-opus-4-6", WebSearchRequests: n}},
		// 922,337,203,685 searches = 9,223,372,036,850,000,000 nanos fit alone;
		// 2^40 output at $75 (82,463,372,083,200,000) on top does not.
		{"tokens plus searches", meter.Usage{Model: "claude-opus-4-1", OutputTokens: n, WebSearchRequests: 922_337_203_685}},
		{"count above 2^40", meter.Usage{Model: "claude-opus-4-6", InputTokens: n + 1}},
		{"split above 2^40", meter.Usage{Model: "claude-opus-4-6", CacheCreationSplit: true, CacheWrite1hTokens: n + 1}},
		{"negative count", meter.Usage{Model: "claude-opus-4-6", OutputTokens: -1}},
		// 2^40 × (2^63-1) / 1e6 nanos is about 1e25: far above MaxInt64.
		{"rate times count", meter.Usage{Model: "huge", InputTokens: n}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			got, err := huge.Cost(tt.u, nov15)
			if !errors.Is(err, ErrOutOfRange) {
				t.Errorf("Cost = %+v, %v; want ErrOutOfRange", got, err)
			}
		})
	}
	// The same dear rate on one token fits: (2^63-1) / 1e6 rounded up.
	got, err := huge.Cost(meter.Usage{Model: "huge", InputTokens: 1}, nov15)
	if err != nil || got.Total != 9_223_372_036_855 {
		t.Errorf("one token at MaxInt64 nanos/MTok: %d, %v; want 9,223,372,036,855", got.Total, err)
	}
}
