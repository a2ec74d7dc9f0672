package pricing

import (
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

func TestContextWindowBoundsThePrompt(t *testing.T) {
	tb := mustDefault(t)
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		r    Request
		want money.Nanos
	}{
		// 1,000,000 × $6/MTok (1h write) + 1,000 × $15/MTok.
		{"sonnet-4-6, 1M window", Request{Model: "claude-sonnet-4-6", PromptBytes: 10, MaxTokens: 1_000, ContextBound: true}, 6_015_000_000},
		// 200,000 × $2/MTok + 1,000 × $5/MTok.
		{"haiku-4-5, 200k window", Request{Model: "claude-haiku-4-5", PromptBytes: 10, MaxTokens: 1_000, ContextBound: true}, 405_000_000},
		// The window puts Haiku 5.5 in its long-prompt tier: 1M × $1 + 1,000 × $2.50.
		{"haiku-5-5 long tier", Request{Model: "claude-haiku-5-5", PromptBytes: 10, MaxTokens: 1_000, ContextBound: true}, 1_002_500_000},
		// (10 + 2,048 + 5,000) × $6 + 1,000 × $15.
		{"tool overhead", Request{Model: "claude-sonnet-4-6", PromptBytes: 10, MaxTokens: 1_000, ExtraPromptTokens: 5_000}, 57_348_000},
	}
	for _, tt := range tests {
		got, err := tb.Estimate(tt.r, at)
		if err != nil || got != tt.want {
			t.Errorf("%s: Estimate = %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
	if n, ok := tb.ContextWindow("claude-haiku-4-5"); !ok || n != 200_000 {
		t.Errorf("ContextWindow(haiku-4-5) = %d, %v", n, ok)
	}
	if _, ok := tb.ContextWindow("no-such-model"); ok {
		t.Error("ContextWindow of an unknown model under reject: ok")
	}
	cm, err := New(tb, policy.Pricing{UnknownModel: policy.UnknownChargeMax, Models: map[string]policy.ModelPrice{"acme": {Input: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := cm.ContextWindow("no-such-model"); !ok || n != DefaultContextWindow {
		t.Errorf("ContextWindow(unknown, charge_max) = %d, %v", n, ok)
	}
	if n, ok := cm.ContextWindow("acme"); !ok || n != DefaultContextWindow {
		t.Errorf("ContextWindow(policy model) = %d, %v", n, ok)
	}
}

func TestCostPricesEachIterationAtItsModel(t *testing.T) {
	tb := mustDefault(t)
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	its := `[{"type":"message","model":"claude-haiku-4-5","input_tokens":1000,"output_tokens":100},` +
		`{"type":"fallback_message","model":"claude-opus-4-1","input_tokens":1000,"output_tokens":200},` +
		`{"type":"compaction","input_tokens":500,"output_tokens":50}]`
	u := meter.Usage{Model: "claude-haiku-4-5", InputTokens: 2500, OutputTokens: 350, IterationsJSON: its}
	c, err := tb.Cost(u, at)
	if err != nil {
		t.Fatal(err)
	}
	// Haiku 4.5: 1,000 × $1 + 100 × $5 = 1,500,000; Opus 4.1: 1,000 × $15 +
	// 200 × $75 = 30,000,000; compaction on the response's model (Haiku):
	// 500 × $1 + 50 × $5 = 750,000. The totals are the sum: nothing more.
	if want := money.Nanos(32_250_000); c.Total != want {
		t.Errorf("Total = %d, want %d", c.Total, want)
	}
	// Totals beyond the iterations are billed at the response's model.
	u.OutputTokens += 1000
	c, err = tb.Cost(u, at)
	if want := money.Nanos(32_250_000 + 5_000_000); err != nil || c.Total != want {
		t.Errorf("with excess output: Total = %d, %v; want %d", c.Total, err, want)
	}
	// Priced at the top-level model alone it would be far less.
	flat, _ := tb.Cost(meter.Usage{Model: "claude-haiku-4-5", InputTokens: 2500, OutputTokens: 350}, at)
	if flat.Total >= c.Total {
		t.Errorf("flat %d >= per-iteration %d", flat.Total, c.Total)
	}
}
