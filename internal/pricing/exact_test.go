package pricing

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// ceilRat rounds a non-negative rational up to an integer.
func ceilRat(r *big.Rat) *big.Int {
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if m.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	return q
}

// TestCostMatchesBigRat checks Cost against an independent math/big
// evaluation of the §7.8 formula, over random rates and counts up to 2^40,
// including results too large for int64.
func TestCostMatchesBigRat(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	base := mustDefault(t)
	maxInt := big.NewInt(math.MaxInt64)
	var fits, overflows int
	for i := range 3000 {
		// Rates up to 2^(10..63) nano-USD per MTok; odd values make fractions.
		shift := 10 + rng.IntN(53)
		rate := func() money.Nanos { return money.Nanos(rng.Int64N(1 << shift)) }
		mp := policy.ModelPrice{Input: rate(), Output: rate(), CacheWrite5m: rate(), CacheWrite1h: rate(), CacheRead: rate()}
		tb, err := New(base, policy.Pricing{Models: map[string]policy.ModelPrice{"m": mp}})
		if err != nil {
			t.Fatal(err)
		}
		count := func() int64 { return rng.Int64N(1 << (1 + rng.IntN(40))) }
		u := meter.Usage{
			Model: "m", InputTokens: count(), OutputTokens: count(), CacheReadInputTokens: count(),
			CacheCreationInputTokens: count(), CacheWrite5mTokens: count(), CacheWrite1hTokens: count(),
			CacheCreationSplit: rng.IntN(2) == 0, WebSearchRequests: rng.Int64N(1 << rng.IntN(35)),
		}
		u.CacheCreationInputTokens = min(u.CacheCreationInputTokens, MaxCount)
		if rng.IntN(2) == 0 {
			u.InferenceGeo = "us"
		}
		if rng.IntN(2) == 0 {
			u.ServiceTier = "batch"
		}

		// Reference, straight from the formula with exact rationals.
		w5, w1 := u.CacheCreationInputTokens, int64(0)
		if u.CacheCreationSplit {
			w5, w1 = u.CacheWrite5mTokens, u.CacheWrite1hTokens
			if ex := u.CacheCreationInputTokens - w5 - w1; ex > 0 {
				w1 += ex
			}
		}
		mult := big.NewRat(1, 1)
		if u.InferenceGeo == "us" {
			mult.Mul(mult, big.NewRat(11, 10))
		}
		if u.ServiceTier == "batch" {
			mult.Mul(mult, big.NewRat(1, 2))
		}
		sum := new(big.Rat)
		var wantComps [NumComponents]*big.Int
		for c, pair := range [numTokenKinds][2]int64{
			Input: {u.InputTokens, int64(mp.Input)}, Output: {u.OutputTokens, int64(mp.Output)},
			CacheWrite5m: {w5, int64(mp.CacheWrite5m)}, CacheWrite1h: {w1, int64(mp.CacheWrite1h)},
			CacheRead: {u.CacheReadInputTokens, int64(mp.CacheRead)},
		} {
			x := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(pair[0]), big.NewInt(pair[1])), big.NewInt(1_000_000))
			x.Mul(x, mult)
			wantComps[c] = ceilRat(x)
			sum.Add(sum, x)
		}
		wantComps[WebSearch] = new(big.Int).Mul(big.NewInt(u.WebSearchRequests), big.NewInt(10_000_000))
		want := ceilRat(sum)
		want.Add(want, wantComps[WebSearch])

		tooBig := want.Cmp(maxInt) > 0
		for _, c := range wantComps {
			tooBig = tooBig || c.Cmp(maxInt) > 0
		}
		got, err := tb.Cost(u, nov15)
		desc := fmt.Sprintf("case %d: rates %+v usage %+v", i, mp, u)
		if tooBig {
			overflows++
			if !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("%s: want ErrOutOfRange for %s nanos, got %d, %v", desc, want, got.Total, err)
			}
			continue
		}
		fits++
		if err != nil {
			t.Fatalf("%s: %v", desc, err)
		}
		if big.NewInt(int64(got.Total)).Cmp(want) != 0 {
			t.Fatalf("%s: Total %d, want %s", desc, got.Total, want)
		}
		for c := range NumComponents {
			if big.NewInt(int64(got.Components[c])).Cmp(wantComps[c]) != 0 {
				t.Fatalf("%s: %s %d, want %s", desc, Component(c), got.Components[c], wantComps[c])
			}
		}
	}
	if fits < 500 || overflows < 100 {
		t.Errorf("too few cases of a kind: %d fit, %d overflow", fits, overflows)
	}
	t.Logf("%d exact, %d out of range", fits, overflows)
}

func TestU128(t *testing.T) {
	// (2^64-1)^2 = 2^128 - 2^65 + 1.
	x := mul64(math.MaxUint64, math.MaxUint64)
	if x.hi != math.MaxUint64-1 || x.lo != 1 {
		t.Errorf("mul64 = %#x %#x", x.hi, x.lo)
	}
	if _, ok := x.add(u128{hi: 1, lo: math.MaxUint64}); ok {
		t.Error("add: overflow not reported")
	}
	if s, ok := (u128{lo: math.MaxUint64}).add(u128{lo: 1}); !ok || s != (u128{hi: 1}) {
		t.Errorf("add carry = %+v, %v", s, ok)
	}
	if _, ok := (u128{hi: 1 << 62}).mulSmall(4); ok {
		t.Error("mulSmall: overflow not reported")
	}
	if p, ok := (u128{hi: 1, lo: 1 << 63}).mulSmall(2); !ok || p != (u128{hi: 3}) {
		t.Errorf("mulSmall carry = %+v, %v", p, ok)
	}
	for _, tt := range []struct {
		x    u128
		d    uint64
		want int64
		ok   bool
	}{
		{u128{lo: 10}, 4, 3, true},
		{u128{lo: 12}, 4, 3, true},
		{u128{lo: math.MaxInt64}, 1, math.MaxInt64, true},
		{u128{lo: math.MaxInt64 + 1}, 1, 0, false},
		{u128{hi: 1}, 2, 0, false},                  // 2^63 does not fit int64
		{u128{hi: 1}, 3, 6148914691236517206, true}, // ceil(2^64/3)
		{u128{hi: 5}, 5, 0, false},
	} {
		got, ok := tt.x.divUp(tt.d)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%+v divUp %d = %d, %v; want %d, %v", tt.x, tt.d, got, ok, tt.want, tt.ok)
		}
	}
}
