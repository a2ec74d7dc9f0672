// Package money holds amounts of US dollars as integer nano-dollars.
//
// Spend is summed across replicas with INCRBY and compared against caps, so
// it must be exact: floats appear only when an amount is shown to a person
// or exported to Prometheus.
package money

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Nanos is an amount in nano-USD (1e-9 USD).
type Nanos int64

// PerUSD is the number of nano-dollars in one dollar.
const PerUSD Nanos = 1_000_000_000

// ErrParse reports a malformed decimal amount.
var ErrParse = errors.New("money: malformed amount")

// USD converts whole dollars to Nanos.
func USD(d int64) Nanos { return Nanos(d) * PerUSD }

// Float returns the amount in dollars for metrics and display.
func (n Nanos) Float() float64 { return float64(n) / float64(PerUSD) }

// String formats the amount as an exact decimal with up to nine fraction
// digits and no trailing zeros, e.g. "12.345678901", "0.5", "-3".
func (n Nanos) String() string {
	if n == 0 {
		return "0" // most cost components of most requests
	}
	var buf [24]byte
	return string(n.Append(buf[:0]))
}

// Append appends the String form to b. The spend log writes several
// amounts per request, so this avoids fmt.
func (n Nanos) Append(b []byte) []byte {
	u := uint64(n)
	if n < 0 {
		b = append(b, '-')
		u = uint64(-(n + 1)) + 1 // safe for MinInt64
	}
	whole, frac := u/uint64(PerUSD), u%uint64(PerUSD)
	b = strconv.AppendUint(b, whole, 10)
	if frac == 0 {
		return b
	}
	var digits [9]byte
	for i := len(digits) - 1; i >= 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	b = append(b, '.')
	return append(b, bytes.TrimRight(digits[:], "0")...)
}

// Parse reads an exact decimal dollar amount ("12.5", "-0.000000001").
// More than nine fraction digits, exponents and overflow are errors:
// rounding a budget silently is how caps drift.
func Parse(s string) (Nanos, error) {
	orig := s
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	} else if strings.HasPrefix(s, "+") {
		s = s[1:]
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" && (!hasDot || frac == "") {
		return 0, fmt.Errorf("%w: %q", ErrParse, orig)
	}
	if len(frac) > 9 {
		return 0, fmt.Errorf("%w: %q has more than 9 fraction digits", ErrParse, orig)
	}
	if hasDot && frac == "" {
		return 0, fmt.Errorf("%w: %q", ErrParse, orig)
	}
	var w uint64
	if whole != "" {
		var err error
		if !allDigits(whole) {
			return 0, fmt.Errorf("%w: %q", ErrParse, orig)
		}
		w, err = strconv.ParseUint(whole, 10, 64)
		if err != nil || w > uint64(math.MaxInt64/int64(PerUSD)) {
			return 0, fmt.Errorf("%w: %q out of range", ErrParse, orig)
		}
	}
	var f uint64
	if frac != "" {
		if !allDigits(frac) {
			return 0, fmt.Errorf("%w: %q", ErrParse, orig)
		}
		f, _ = strconv.ParseUint(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	v := Nanos(w)*PerUSD + Nanos(f)
	if neg {
		v = -v
	}
	return v, nil
}

// FromFloatExact converts a dollar amount written in a config file (a YAML
// number such as 5000 or 0.30) to Nanos by way of its shortest decimal form,
// so 0.3 becomes exactly 300000000 and not 299999999.
func FromFloatExact(f float64) (Nanos, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%w: %v", ErrParse, f)
	}
	return Parse(strconv.FormatFloat(f, 'f', -1, 64))
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
