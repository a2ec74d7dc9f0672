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
// units is the max_tokens the request is forwarded with.
type Fit struct {
	Fixed   money.Nanos
	PerUnit money.Nanos // zero: the hold is placed at Amount or refused
	Min     int64       // fewest units worth placing (at least 1)
	Max     int64       // at most this many (fewer than Amount buys)
}

// maxFitAmount keeps fitted amounts exact in the Lua script, whose numbers
// are doubles: 2^53 nano-USD is about 9 million USD per request.
const maxFitAmount = 1 << 53

// active reports whether f asks for fitting.
func (f Fit) active() bool { return f.PerUnit > 0 }

// validate checks f against the hold's amount.
func (f Fit) validate(amount money.Nanos) error {
	if !f.active() {
		return nil
	}
	if f.Fixed < 0 || f.Min < 1 || f.Max < f.Min || amount >= maxFitAmount ||
		f.Max > (maxFitAmount-int64(f.Fixed))/int64(f.PerUnit) {
		return fmt.Errorf("%w: fit %+v of a hold of %s", ErrInvalid, f, amount)
	}
	return nil
}

// units returns the largest number of units, at most Max, whose amount
// fits room, and false if that is under Min.
func (f Fit) units(room money.Nanos) (int64, bool) {
	if !f.active() || room < f.Fixed {
		return 0, false
	}
	k := min(int64(room-f.Fixed)/int64(f.PerUnit), f.Max)
	return k, k >= f.Min
}

// amount is the hold for k units.
func (f Fit) amount(k int64) money.Nanos { return f.Fixed + money.Nanos(k)*f.PerUnit }

// unitsOf returns the units a placed amount stands for: 0 if it is the
// hold's own amount.
func (f Fit) unitsOf(placed, amount money.Nanos) int64 {
	if !f.active() || placed == amount {
		return 0
	}
	return int64(placed-f.Fixed) / int64(f.PerUnit)
}

// room returns what the tightest enforced budget has left at levels and
// its index; ok is false when no budget is enforced.
func room(budgets []Budget, levels []level) (left money.Nanos, at int, ok bool) {
	at = -1
	for i, b := range budgets {
		if !b.Enforce {
			continue
		}
		if l := b.Limit - levels[i].spent - levels[i].reserved; !ok || l < left {
			left, at, ok = l, i, true
		}
	}
	return left, at, ok
}
