package pricing

import (
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

func TestDiscountScalesEveryPrice(t *testing.T) {
	base, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	list, err := New(base, policy.Pricing{})
	if err != nil {
		t.Fatal(err)
	}
	disc, err := New(base, policy.Pricing{Discount: 900_000_000})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	u := meter.Usage{Model: "claude-sonnet-4-6", InputTokens: 1_000_000, OutputTokens: 1_000_000, CacheReadInputTokens: 1_000_000, WebSearchRequests: 10}
	lc, err := list.Cost(u, at)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := disc.Cost(u, at)
	if err != nil {
		t.Fatal(err)
	}
	// $3 + $15 + $0.30 + 10 × $0.01 at list; 90% of it discounted.
	if lc.Total != money.Nanos(18_400_000_000) || dc.Total != money.Nanos(16_560_000_000) {
		t.Errorf("list %s, discounted %s; want 18.4 and 16.56", lc.Total, dc.Total)
	}
	if _, err := New(base, policy.Pricing{Discount: 2 * money.PerUSD}); err == nil {
		t.Error("a discount over 1 was accepted")
	}
}

func TestScaleRoundsUp(t *testing.T) {
	for _, c := range []struct {
		r    uint64
		d    money.Nanos
		want uint64
	}{
		{3_000_000_000, 900_000_000, 2_700_000_000},
		{1, 500_000_000, 1},
		{75_000_000_000, 333_333_333, 24_999_999_975},
		{1 << 62, money.PerUSD, 1 << 62},
		{7, 0, 7},
	} {
		if got := scale(c.r, c.d); got != c.want {
			t.Errorf("scale(%d, %d) = %d, want %d", c.r, c.d, got, c.want)
		}
	}
}
