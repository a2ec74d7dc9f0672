package pricing

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

func usd(t *testing.T, s string) money.Nanos {
	t.Helper()
	n, err := money.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOverrides(t *testing.T) {
	base := mustDefault(t)
	tb, err := New(base, policy.Pricing{Models: map[string]policy.ModelPrice{
		// A negotiated Sonnet 4.6 price.
		"claude-sonnet-4-6": {Input: usd(t, "2"), Output: usd(t, "10"), CacheWrite5m: usd(t, "2.5"), CacheWrite1h: usd(t, "4"), CacheRead: usd(t, "0.2")},
		// A model the sheet does not list.
		"acme-large": {Input: usd(t, "1"), Output: usd(t, "2"), CacheWrite5m: usd(t, "1.25"), CacheWrite1h: usd(t, "2"), CacheRead: usd(t, "0.1")},
		// Collapses the sheet's two dated Sonnet 5.5 entries into one.
		"claude-sonnet-5-5": {Input: usd(t, "2"), Output: usd(t, "10"), CacheWrite5m: usd(t, "2.5"), CacheWrite1h: usd(t, "4"), CacheRead: usd(t, "0.15")},
		// By alias: the dated ID bills the same.
		"claude-opus-4-5": {Input: usd(t, "4"), Output: usd(t, "20"), CacheWrite5m: usd(t, "5"), CacheWrite1h: usd(t, "8"), CacheRead: usd(t, "0.4")},
		// Standard rates change; the sheet's fast rates ($8 in) stay.
		"claude-opus-5-5": {Input: usd(t, "3"), Output: usd(t, "15"), CacheWrite5m: usd(t, "3.75"), CacheWrite1h: usd(t, "6"), CacheRead: usd(t, "0.15")},
		// A discount below the tier; the long-prompt tier ($0.50) stays.
		"claude-haiku-5-5": {Input: usd(t, "0.08"), Output: usd(t, "0.4"), CacheWrite5m: usd(t, "0.1"), CacheWrite1h: usd(t, "0.16"), CacheRead: usd(t, "0.008")},
	}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	long := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		u    meter.Usage
		at   time.Time
		want money.Nanos
	}{
		// 1,000,000 in at the override's $2, even long before the sheet's date.
		{"override applies from the beginning of time", meter.Usage{Model: "claude-sonnet-4-6", InputTokens: 1_000_000}, long, 2_000_000_000},
		{"override applies now", meter.Usage{Model: "claude-sonnet-4-6", InputTokens: 1_000_000}, nov15, 2_000_000_000},
		// 1,000,000 in at $1 + 1,000,000 out at $2 = $3.
		{"new model", meter.Usage{Model: "acme-large", InputTokens: 1_000_000, OutputTokens: 1_000_000}, nov15, 3_000_000_000},
		// A policy-only model is treated as residency flagged: $3 × 1.1.
		{"new model with us", meter.Usage{Model: "acme-large", InputTokens: 1_000_000, OutputTokens: 1_000_000, InferenceGeo: "us"}, nov15, 3_300_000_000},
		// 1,000,000 reads at $0.15 on both sides of 2026-10-07.
		{"dated sheet entries are replaced (before)", meter.Usage{Model: "claude-sonnet-5-5", CacheReadInputTokens: 1_000_000}, time.Date(2026, 10, 6, 0, 0, 0, 0, time.UTC), 150_000_000},
		{"dated sheet entries are replaced (after)", meter.Usage{Model: "claude-sonnet-5-5", CacheReadInputTokens: 1_000_000}, nov15, 150_000_000},
		{"alias override reaches the ID", meter.Usage{Model: "claude-opus-4-5-20251101", InputTokens: 1_000_000}, nov15, 4_000_000_000},
		{"alias override reaches the alias", meter.Usage{Model: "claude-opus-4-5", InputTokens: 1_000_000}, nov15, 4_000_000_000},
		{"standard rate overridden", meter.Usage{Model: "claude-opus-5-5", InputTokens: 1_000_000}, nov15, 3_000_000_000},
		// Fast keeps the sheet: 1,000,000 in at $8 and 1,000,000 reads at $0.40.
		{"fast rate kept", meter.Usage{Model: "claude-opus-5-5", InputTokens: 1_000_000, CacheReadInputTokens: 1_000_000, Speed: "fast"}, nov15, 8_400_000_000},
		// Residency flag kept: $3 × 1.1.
		{"residency kept", meter.Usage{Model: "claude-opus-5-5", InputTokens: 1_000_000, InferenceGeo: "us"}, nov15, 3_300_000_000},
		// 100,000 in at $0.08 = 8,000,000.
		{"haiku-5-5 override low tier", meter.Usage{Model: "claude-haiku-5-5", InputTokens: 100_000}, nov15, 8_000_000},
		// 100,001 in at the sheet's high tier $0.50 = 50,000,500.
		{"haiku-5-5 override keeps the long tier", meter.Usage{Model: "claude-haiku-5-5", InputTokens: 100_001}, nov15, 50_000_500},
		// Untouched models keep the sheet: $3.
		{"other models unchanged", meter.Usage{Model: "claude-sonnet-4-5", InputTokens: 1_000_000}, nov15, 3_000_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tb.Cost(tt.u, tt.at)
			if err != nil {
				t.Fatalf("Cost: %v", err)
			}
			if got.Total != tt.want {
				t.Errorf("Total = %d, want %d", got.Total, tt.want)
			}
		})
	}

	if !tb.Known("acme-large") || !slices.Contains(tb.Models(), "acme-large") {
		t.Error("override model missing from Known or Models")
	}
	if len(tb.Models()) != len(base.Models())+1 {
		t.Errorf("Models() has %d names, want base %d + 1", len(tb.Models()), len(base.Models()))
	}
	// The base table is untouched.
	if base.Known("acme-large") {
		t.Error("New changed its base table")
	}
	got, err := base.Cost(meter.Usage{Model: "claude-sonnet-4-6", InputTokens: 1_000_000}, nov15)
	if err != nil || got.Total != 3_000_000_000 {
		t.Errorf("base sonnet-4-6 after New = %d, %v; want 3,000,000,000", got.Total, err)
	}
}

func TestOverridesInvalid(t *testing.T) {
	base := mustDefault(t)
	tests := []struct {
		name    string
		p       policy.Pricing
		wantErr string
	}{
		{"negative rate", policy.Pricing{Models: map[string]policy.ModelPrice{"m": {Output: -1}}}, `model "m": output is negative`},
		{"empty name", policy.Pricing{Models: map[string]policy.ModelPrice{"": {}}}, "empty model name"},
		{"space in name", policy.Pricing{Models: map[string]policy.ModelPrice{"claude sonnet": {}}}, "contains a space"},
		{"ID and alias", policy.Pricing{Models: map[string]policy.ModelPrice{"claude-opus-4-5": {}, "claude-opus-4-5-20251101": {}}}, "overridden twice"},
		{"bad unknown_model", policy.Pricing{UnknownModel: "maybe"}, `unknown_model "maybe"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(base, tt.p)
			if !errors.Is(err, ErrInvalidTable) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New error = %v, want ErrInvalidTable containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewFromNil(t *testing.T) {
	tb, err := New(nil, policy.Pricing{Models: map[string]policy.ModelPrice{"m": {Input: usd(t, "1")}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := tb.Models(); !slices.Equal(got, []string{"m"}) {
		t.Errorf("Models() = %v", got)
	}
	if tb.UnknownModel() != policy.UnknownReject {
		t.Errorf("default unknown-model policy = %q, want reject", tb.UnknownModel())
	}
}
