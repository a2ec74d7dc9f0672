package budget

import (
	"fmt"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// Fit lets a hold that does not fit be placed smaller: as Fixed plus the
// largest whole number of units at PerUnit each that the room left (after
// spend and every other live hold) takes, if that is at least Min units.
// The store decides the number in the same atomic step that places the
// hold, so replicas racing for the last of a budget may each get less, or
// be refused, but never together hold more than the limit.
//
// For a Messages request the units are output tokens: Fixed is the
// prompt's worst case and PerUnit one output token's, and the number of
// Units is the max_tokens the request is forwarded with.
type Fit struct {
	Fixed   money.Nanos
	PerUnit money.Nanos // zero: the hold is placed at Amount or refused
	Min     int64       // fewest units worth placing (at least 1)
	Max     int64       // at most this many (fewer than Amount buys)
}

// maxFitAmount keeps fitted amounts exact in the Lua script, whose numbers
// are doubles: 2^53 nano-USD is about 9 million USD per request.
const maxFitAmount = 1 << 53

// Active reports whether f asks for fitting.
func (f Fit) Active() bool { return f.PerUnit > 0 }

// Validate checks f against the hold's amount.
func (f Fit) Validate(amount money.Nanos) error {
	if !f.Active() {
		return nil
	}
	if f.Fixed < 0 || f.Min < 1 || f.Max < f.Min || amount >= maxFitAmount ||
		f.Max > (maxFitAmount-int64(f.Fixed))/int64(f.PerUnit) {
		return fmt.Errorf("%w: fit %+v of a hold of %s", ErrInvalid, f, amount)
	}
	return nil
}

// Units returns the largest number of units, at most Max, whose amount
// fits room, and false if that is under Min.
func (f Fit) Units(room money.Nanos) (int64, bool) {
	if !f.Active() || room < f.Fixed {
		return 0, false
	}
	k := min(int64(room-f.Fixed)/int64(f.PerUnit), f.Max)
	return k, k >= f.Min
}

// Amount is the hold for k units.
func (f Fit) Amount(k int64) money.Nanos { return f.Fixed + money.Nanos(k)*f.PerUnit }

// UnitsOf returns the units a placed amount stands for: 0 if it is the
// hold's own amount.
func (f Fit) UnitsOf(placed, amount money.Nanos) int64 {
	if !f.Active() || placed == amount {
		return 0
	}
	return int64(placed-f.Fixed) / int64(f.PerUnit)
}
