package budget

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// PreparedHold is a validated hold with everything a store derives from
// the clock, computed once so every store (and the grants over them)
// decides identically.
type PreparedHold struct {
	Hold     Hold
	Now      time.Time
	Expiry   time.Time   // lease end
	Keys     []string    // the window key of each budget, in Hold order
	Ends     []time.Time // window end per budget, zero for Total
	KeysJoin string      // Keys joined by "\n": one string names the set
}

// PrepareHold validates h and derives its windows and lease end at now; a
// hold without a TTL gets defTTL.
func PrepareHold(h Hold, now time.Time, defTTL time.Duration) (PreparedHold, error) {
	if h.RequestID == "" {
		return PreparedHold{}, fmt.Errorf("%w: hold without request ID", ErrInvalid)
	}
	if h.Amount < 0 {
		return PreparedHold{}, fmt.Errorf("%w: negative hold amount %s", ErrInvalid, h.Amount)
	}
	if err := h.Fit.Validate(h.Amount); err != nil {
		return PreparedHold{}, err
	}
	ttl := h.TTL
	if ttl <= 0 {
		ttl = defTTL
	}
	a := PreparedHold{Hold: h, Now: now, Expiry: now.Add(ttl)}
	a.Keys = make([]string, len(h.Budgets))
	a.Ends = make([]time.Time, len(h.Budgets))
	// The keys are built joined, in one buffer, and each is a substring of
	// the joined string: every request names several budgets.
	var stack [256]byte
	joined := stack[:0]
	for i, b := range h.Budgets {
		if i > 0 {
			joined = append(joined, '\n')
		}
		start, end := b.Window(now)
		from := len(joined)
		joined = b.AppendWindowKey(joined, start)
		if bytes.IndexByte(joined[from:], '\n') >= 0 {
			return PreparedHold{}, fmt.Errorf("%w: budget key %q contains a newline", ErrInvalid, joined[from:])
		}
		a.Ends[i] = end
	}
	a.KeysJoin = string(joined)
	rest := a.KeysJoin
	for i := range a.Keys {
		a.Keys[i], rest, _ = strings.Cut(rest, "\n")
	}
	for i, k := range a.Keys {
		// A hold names a handful of budgets: a scan beats a map here.
		if slices.Contains(a.Keys[:i], k) {
			return PreparedHold{}, fmt.Errorf("%w: budget %s listed twice in one hold", ErrInvalid, h.Budgets[i].Label())
		}
	}
	return a, nil
}

// Level is a budget window's spend and live holds, as a store read them.
type Level struct{ Spent, Reserved money.Nanos }

// Admitted is the reservation of this hold, without the remaining budget.
func (a PreparedHold) Admitted() Reservation {
	r := Reservation{
		RequestID: a.Hold.RequestID,
		Keys:      a.Keys,
		Enforced:  make([]bool, len(a.Keys)),
		Amount:    a.Hold.Amount,
	}
	for i, b := range a.Hold.Budgets {
		r.Enforced[i] = b.Enforce
	}
	return r
}

// reservation builds the admitted reservation from the levels the store
// reports after placing the hold.
func (a PreparedHold) reservation(levels []Level) Reservation {
	r := a.Admitted()
	r.Remaining, r.HasRemaining = Tightest(a.Hold.Budgets, levels)
	return r
}

// Placed is the reservation of a hold the store placed at amt, which is
// below the Hold's Amount when it was fitted, given the levels (one per
// budget) after placing it.
func (a PreparedHold) Placed(amt money.Nanos, levels []Level) Reservation {
	r := a.reservation(levels)
	r.Amount, r.Fitted = amt, a.Hold.Fit.UnitsOf(amt, a.Hold.Amount)
	return r
}

// Tightest returns what the tightest enforced budget has left at levels
// (one per budget), and false when no budget is enforced.
func Tightest(budgets []Budget, levels []Level) (rem money.Nanos, ok bool) {
	for i, b := range budgets {
		if !b.Enforce {
			continue
		}
		if left := b.Limit - levels[i].Spent - levels[i].Reserved; !ok || left < rem {
			rem, ok = left, true
		}
	}
	return rem, ok
}

// Exceeded reports budget i, at level l, as the one the hold did not fit.
func (a PreparedHold) Exceeded(i int, l Level) *ExceededError {
	return &ExceededError{
		Budget:   a.Hold.Budgets[i],
		ResetsAt: a.Ends[i],
		Spent:    l.Spent,
		Reserved: l.Reserved,
	}
}

// StatusOf builds the Status of b at now from its level.
func StatusOf(b Budget, now time.Time, l Level) Status {
	start, end := b.Window(now)
	return Status{Budget: b, WindowStart: start, ResetsAt: end, Spent: l.Spent, Reserved: l.Reserved}
}
