package pricing

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

var nov15 = time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC)

type comps = [NumComponents]money.Nanos

func TestCostTokens(t *testing.T) {
	tb := mustDefault(t)
	got, err := tb.Cost(meter.Usage{
		Model: "claude-sonnet-4-6", InputTokens: 1, OutputTokens: 2, CacheReadInputTokens: 3,
		CacheCreationInputTokens: 10, CacheCreationSplit: true, CacheWrite5mTokens: 4, CacheWrite1hTokens: 5,
		WebSearchRequests: 6,
	}, nov15)
	if err != nil {
		t.Fatal(err)
	}
	// The split explains 9 of 10 writes; the tenth goes to 1h.
	want := [NumComponents]int64{Input: 1, Output: 2, CacheRead: 3, CacheWrite5m: 4, CacheWrite1h: 6, WebSearch: 6}
	if got.Tokens != want {
		t.Errorf("Tokens = %v, want %v", got.Tokens, want)
	}

	// A split summing above the total is billed as reported (the larger).
	got, err = tb.Cost(meter.Usage{
		Model: "claude-sonnet-4-6", CacheCreationInputTokens: 10, CacheCreationSplit: true,
		CacheWrite5mTokens: 8, CacheWrite1hTokens: 8,
	}, nov15)
	if err != nil {
		t.Fatal(err)
	}
	if got.Tokens[CacheWrite5m] != 8 || got.Tokens[CacheWrite1h] != 8 {
		t.Errorf("split over total: Tokens = %v, want 8 and 8 writes", got.Tokens)
	}
}

func TestCostUnknownModel(t *testing.T) {
	u := meter.Usage{Model: "claude-mythos-5-2", InputTokens: 1_000_000, OutputTokens: 1_000_000}

	reject := mustDefault(t)
	if _, err := reject.Cost(u, nov15); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("Cost of unknown model: err = %v, want ErrUnknownModel", err)
	}
	explicit, err := New(reject, policy.Pricing{UnknownModel: policy.UnknownReject})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := explicit.Cost(u, nov15); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("Cost with unknown_model reject: err = %v, want ErrUnknownModel", err)
	}

	tb, err := New(reject, policy.Pricing{UnknownModel: policy.UnknownChargeMax})
	if err != nil {
		t.Fatal(err)
	}
	if tb.UnknownModel() != policy.UnknownChargeMax {
		t.Errorf("UnknownModel() = %q", tb.UnknownModel())
	}
	tests := []struct {
		name      string
		u         meter.Usage
		want      money.Nanos
		wantModel string
	}{
		{
			// Dearest for in+out is Opus 4.1 at $15 + $75 = $90 (tied with
			// Opus 4, which sorts after it).
			name: "text", u: u, want: 90_000_000_000, wantModel: "claude-opus-4-1-20250805",
		},
		{
			// Fast and us do not beat Opus 4.1: Opus 5 fast us is (10 + 50) × 1.1 = $66.
			name: "fast us", want: 90_000_000_000, wantModel: "claude-opus-4-1-20250805",
			u: meter.Usage{Model: "x", InputTokens: 1_000_000, OutputTokens: 1_000_000, Speed: "fast", InferenceGeo: "us"},
		},
		{
			// Long prompt: 200,000 Haiku 5.5 tokens would be high tier, but Opus 4.1
			// at $15 is still dearest: 200,000 × $15/MTok = $3.
			name: "long prompt", want: 3_000_000_000, wantModel: "claude-opus-4-1-20250805",
			u: meter.Usage{Model: "x", InputTokens: 200_000},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tb.Cost(tt.u, nov15)
			if err != nil {
				t.Fatal(err)
			}
			if !got.ChargedAsMax || got.Total != tt.want || got.Model != tt.wantModel {
				t.Errorf("got ChargedAsMax %v, Total %d, Model %q; want true, %d, %q",
					got.ChargedAsMax, got.Total, got.Model, tt.want, tt.wantModel)
			}
		})
	}

	// Known models are unaffected by charge_max.
	got, err := tb.Cost(meter.Usage{Model: "claude-haiku-4-5", InputTokens: 1_000_000}, nov15)
	if err != nil || got.ChargedAsMax || got.Total != 1_000_000_000 {
		t.Errorf("known model under charge_max: %+v, %v", got, err)
	}

	// charge_max over an empty table has nothing to charge.
	empty, err := New(nil, policy.Pricing{UnknownModel: policy.UnknownChargeMax})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := empty.Cost(u, nov15); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("charge_max on empty table: err = %v, want ErrUnknownModel", err)
	}
}

func TestCostConcurrent(t *testing.T) {
	tb := mustDefault(t)
	u := meter.Usage{Model: "claude-sonnet-5-5", InputTokens: 1234, OutputTokens: 567, CacheReadInputTokens: 89}
	want, err := tb.Cost(u, nov15)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			for range 200 {
				got, err := tb.Cost(u, nov15)
				if err != nil || got != want {
					errs <- "concurrent Cost differs"
					return
				}
				_ = tb.Known(u.Model)
				_, _ = tb.Estimate(Request{Model: u.Model, PromptBytes: 100, MaxTokens: 10}, nov15)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
