package ledger

import (
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

func TestLinesAddUpToTheCharge(t *testing.T) {
	prices, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 19, 42, 7, 0, time.UTC)
	usages := []meter.Usage{
		{Model: "claude-sonnet-4-6", InputTokens: 1, OutputTokens: 1, CacheReadInputTokens: 1, CacheCreationInputTokens: 1},
		{Model: "claude-haiku-4-5", InputTokens: 1200, OutputTokens: 300, ServiceTier: "batch"},
		{Model: "claude-opus-4-7", InputTokens: 7, CacheCreationSplit: true, CacheWrite5mTokens: 3, CacheWrite1hTokens: 5,
			CacheCreationInputTokens: 8, OutputTokens: 11, WebSearchRequests: 2, InferenceGeo: "us"},
	}
	for _, u := range usages {
		cost, err := prices.Cost(u, at)
		if err != nil {
			t.Fatal(err)
		}
		ls := Lines(Charge{At: at, Workspace: "prod", Key: "main", Model: u.Model, Cost: cost})
		var sum money.Nanos
		var tokens int64
		for _, l := range ls {
			sum += l.Nanos
			tokens += l.Tokens
			if !l.Hour.Equal(at.Truncate(time.Hour)) || l.Workspace != "prod" || l.Key != "main" || l.Model != u.Model || l.Nanos < 0 {
				t.Errorf("line %+v", l)
			}
		}
		want := u.InputTokens + u.OutputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens + u.WebSearchRequests
		if sum != cost.Total || tokens != want {
			t.Errorf("%s: lines sum to %s and %d tokens, want %s and %d", u.Model, sum, tokens, cost.Total, want)
		}
	}
}

func TestEstimatedChargeIsOneLine(t *testing.T) {
	at := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	ls := Lines(Charge{At: at, Workspace: "w", Key: "k", Model: "m", Cost: pricing.Cost{Total: 1234}, Estimated: true})
	if len(ls) != 1 || ls[0].Component != Estimate || ls[0].Nanos != 1234 || ls[0].Tokens != 0 {
		t.Errorf("estimated charge: %+v", ls)
	}
	if ls := Lines(Charge{At: at, Cost: pricing.Cost{}, Estimated: true}); len(ls) != 0 {
		t.Errorf("a zero estimate: %+v, want no line", ls)
	}
}
