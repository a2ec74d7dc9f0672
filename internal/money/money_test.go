package money

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestStringAndParseRoundTrip(t *testing.T) {
	tests := []struct {
		n    Nanos
		want string
	}{
		{0, "0"},
		{1, "0.000000001"},
		{12_345_678_901, "12.345678901"},
		{500_000_000, "0.5"},
		{-3 * PerUSD, "-3"},
		{math.MaxInt64, "9223372036.854775807"},
		{math.MinInt64 + 1, "-9223372036.854775807"},
	}
	for _, tt := range tests {
		if got := tt.n.String(); got != tt.want {
			t.Errorf("Nanos(%d).String() = %q, want %q", int64(tt.n), got, tt.want)
		}
		back, err := Parse(tt.want)
		if err != nil || back != tt.n {
			t.Errorf("Parse(%q) = %d, %v; want %d", tt.want, back, err, tt.n)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{"", ".", "1.", "-", "1e3", "0.0000000001", "abc", "1.2.3", "99999999999"} {
		if _, err := Parse(s); !errors.Is(err, ErrParse) {
			t.Errorf("Parse(%q) err = %v, want ErrParse", s, err)
		}
	}
}

func TestFromFloatExact(t *testing.T) {
	for f, want := range map[float64]Nanos{0.3: 300_000_000, 5000: 5000 * PerUSD, 0.125: 125_000_000, 3.75: 3_750_000_000} {
		got, err := FromFloatExact(f)
		if err != nil || got != want {
			t.Errorf("FromFloatExact(%v) = %d, %v; want %d", f, got, err, want)
		}
	}
	if _, err := FromFloatExact(math.NaN()); err == nil {
		t.Error("NaN accepted")
	}
}

// reference is String written the obvious way, with fmt.
func reference(n Nanos) string {
	sign, u := "", uint64(n)
	if n < 0 {
		sign, u = "-", -u
	}
	s := fmt.Sprintf("%s%d.%09d", sign, u/uint64(PerUSD), u%uint64(PerUSD))
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

func TestStringMatchesReference(t *testing.T) {
	values := []Nanos{0, 1, -1, 9, 10, 1_000_000_001, 1_050_000_000, -1_050_000_000, PerUSD, PerUSD - 1,
		math.MaxInt64, math.MinInt64, math.MinInt64 + 1}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		values = append(values, Nanos(rng.Int64()), Nanos(rng.Int64N(10*int64(PerUSD))-5*int64(PerUSD)))
	}
	for _, n := range values {
		if got, want := n.String(), reference(n); got != want {
			t.Fatalf("Nanos(%d).String() = %q, want %q", int64(n), got, want)
		}
	}
}
