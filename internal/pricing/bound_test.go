package pricing

import (
	"testing"
	"time"

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
