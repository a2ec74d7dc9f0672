package pricing

import (
	"math"
	"math/bits"
)

// u128 is an unsigned 128-bit integer. A token count (at most 2^40) times a
// rate (at most 2^63 nano-USD per MTok) times a multiplier numerator (at
// most 22), summed over five kinds, stays below 2^111, so the exact
// numerator of a cost never wraps.
type u128 struct{ hi, lo uint64 }

// mul64 returns a*b.
func mul64(a, b uint64) u128 {
	hi, lo := bits.Mul64(a, b)
	return u128{hi, lo}
}

// add returns x+y; ok is false if the sum does not fit in 128 bits.
func (x u128) add(y u128) (sum u128, ok bool) {
	lo, c := bits.Add64(x.lo, y.lo, 0)
	hi, c := bits.Add64(x.hi, y.hi, c)
	return u128{hi, lo}, c == 0
}

// mulSmall returns x*m; ok is false if the product does not fit.
func (x u128) mulSmall(m uint64) (p u128, ok bool) {
	hiHi, hiLo := bits.Mul64(x.hi, m)
	loHi, loLo := bits.Mul64(x.lo, m)
	hi, c := bits.Add64(hiLo, loHi, 0)
	return u128{hi, loLo}, hiHi == 0 && c == 0
}

// divUp returns ceil(x/d) as an int64; ok is false if it does not fit.
// d must not be zero.
func (x u128) divUp(d uint64) (q int64, ok bool) {
	if x.hi >= d {
		return 0, false // the quotient needs more than 64 bits
	}
	quo, rem := bits.Div64(x.hi, x.lo, d)
	if rem != 0 {
		if quo == math.MaxUint64 {
			return 0, false
		}
		quo++
	}
	if quo > math.MaxInt64 {
		return 0, false
	}
	return int64(quo), true
}
