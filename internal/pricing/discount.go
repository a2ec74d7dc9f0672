package pricing

import (
	"math/bits"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// A negotiated discount (policy pricing.discount) multiplies every rate,
// the web search fee included, so that caps and the spend ledger are kept
// in invoice dollars. Each discounted rate is rounded up to the nano-USD
// per MTok: at most a billionth of a dollar per million tokens over, never
// under.

// scale returns ceil(r × d / 1e9), or r when d is 0 or 1.
func scale(r uint64, d money.Nanos) uint64 {
	if d <= 0 || d == money.PerUSD {
		return r
	}
	hi, lo := bits.Mul64(r, uint64(d))
	q, rem := bits.Div64(hi, lo, uint64(money.PerUSD)) // d ≤ 1e9, so q ≤ r: no overflow
	if rem > 0 {
		q++
	}
	return q
}

func (r rates) scaled(d money.Nanos) rates {
	for k := range r {
		r[k] = scale(r[k], d)
	}
	return r
}

// discounted returns a copy of m with every rate multiplied by d.
func (m *model) discounted(d money.Nanos) *model {
	c := *m
	c.periods = make([]period, len(m.periods))
	for i, p := range m.periods {
		p.std, p.fast = p.std.scaled(d), p.fast.scaled(d)
		c.periods[i] = p
	}
	c.long = m.long.scaled(d)
	return &c
}
