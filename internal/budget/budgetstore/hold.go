package budgetstore

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// reserveArgs is a validated hold with everything both stores derive from
// the clock, computed once so both stores decide identically.
type reserveArgs struct {
	h        budget.Hold
	now      time.Time
	expiry   time.Time // lease end
	keys     []string
	ends     []time.Time // window end per budget, zero for Total
	keysJoin string
}

func prepareHold(h budget.Hold, now time.Time, defTTL time.Duration) (reserveArgs, error) {
	if h.RequestID == "" {
		return reserveArgs{}, fmt.Errorf("%w: hold without request ID", budget.ErrInvalid)
	}
	if h.Amount < 0 {
		return reserveArgs{}, fmt.Errorf("%w: negative hold amount %s", budget.ErrInvalid, h.Amount)
	}
	if err := h.Fit.Validate(h.Amount); err != nil {
		return reserveArgs{}, err
	}
	ttl := h.TTL
	if ttl <= 0 {
		ttl = defTTL
	}
	a := reserveArgs{h: h, now: now, expiry: now.Add(ttl)}
	a.keys = make([]string, 0, len(h.Budgets))
	a.ends = make([]time.Time, 0, len(h.Budgets))
	for _, b := range h.Budgets {
		start, end := b.Window(now)
		k := b.WindowKey(start)
		if strings.Contains(k, "\n") {
			return reserveArgs{}, fmt.Errorf("%w: budget key %q contains a newline", budget.ErrInvalid, k)
		}
		// A hold names a handful of budgets: a scan beats a map here.
		if slices.Contains(a.keys, k) {
			return reserveArgs{}, fmt.Errorf("%w: budget %s listed twice in one hold", budget.ErrInvalid, b.Label())
		}
		a.keys = append(a.keys, k)
		a.ends = append(a.ends, end)
	}
	a.keysJoin = strings.Join(a.keys, "\n")
	return a, nil
}

// leaseFor validates an Extend of r and returns the lease to grant: ttl,
// or def when ttl is not positive.
func leaseFor(r budget.Reservation, ttl, def time.Duration) (time.Duration, error) {
	if r.RequestID == "" {
		return 0, fmt.Errorf("%w: extend without request ID", budget.ErrInvalid)
	}
	if ttl <= 0 {
		ttl = def
	}
	return ttl, nil
}

// checkActual validates a settlement's request ID and cost.
func checkActual(r budget.Reservation, actual money.Nanos) error {
	if r.RequestID == "" {
		return fmt.Errorf("%w: settlement without request ID", budget.ErrInvalid)
	}
	if actual < 0 {
		return fmt.Errorf("%w: negative actual cost %s for %q", budget.ErrInvalid, actual, r.RequestID)
	}
	return checkLedger(r, actual)
}

// checkSettle validates a settlement: checkActual, and windows that are
// present, distinct and newline-free.
func checkSettle(r budget.Reservation, actual money.Nanos) error {
	if err := checkActual(r, actual); err != nil {
		return err
	}
	seen := make(map[string]bool, len(r.Keys))
	for _, k := range r.Keys {
		if k == "" || strings.Contains(k, "\n") || seen[k] {
			return fmt.Errorf("%w: bad or repeated budget key %q in settlement of %q", budget.ErrInvalid, k, r.RequestID)
		}
		seen[k] = true
	}
	return nil
}

// windowKeyTTL is how long a window's counters live, measured on the
// injected clock: to the window's end plus the grace period, or forever
// (0) for Total budgets.
func windowKeyTTL(end, now time.Time) time.Duration {
	if end.IsZero() {
		return 0
	}
	return end.Add(windowGrace).Sub(now)
}

// keyOnlyTTL is the lifetime given to a window's counters when they are
// first created by a settlement that knows only the key (a journaled
// replay): the key ends in the window's start date ("20261127") or "all".
// It assumes the longest window and never returns less than a day, so a
// very late replay is recorded rather than expiring on arrival.
func keyOnlyTTL(key string, now time.Time) time.Duration {
	i := strings.LastIndexByte(key, ':')
	if i < 0 || key[i+1:] == "all" {
		return 0
	}
	start, err := time.Parse("20060102", key[i+1:])
	if err != nil {
		return 0
	}
	ttl := start.Add(maxWindow + windowGrace).Sub(now)
	if ttl < 24*time.Hour {
		ttl = 24 * time.Hour
	}
	return ttl
}

// admitted is the reservation of this hold, without the remaining budget.
func (a reserveArgs) admitted() budget.Reservation {
	r := budget.Reservation{
		RequestID: a.h.RequestID,
		Keys:      a.keys,
		Enforced:  make([]bool, len(a.keys)),
		Amount:    a.h.Amount,
	}
	for i, b := range a.h.Budgets {
		r.Enforced[i] = b.Enforce
	}
	return r
}

// reservation builds the admitted reservation from the levels the store
// reports after placing the hold.
func (a reserveArgs) reservation(levels []level) budget.Reservation {
	r := a.admitted()
	r.Remaining, r.HasRemaining = tightest(a.h.Budgets, levels)
	return r
}

// placed is reservation for a hold the store placed at amt, which is
// below the Hold's Amount when it was fitted.
func (a reserveArgs) placed(amt money.Nanos, levels []level) budget.Reservation {
	r := a.reservation(levels)
	r.Amount, r.Fitted = amt, a.h.Fit.UnitsOf(amt, a.h.Amount)
	return r
}

// tightest returns what the tightest enforced budget has left at levels
// (one per budget), and false when no budget is enforced.
func tightest(budgets []budget.Budget, levels []level) (rem money.Nanos, ok bool) {
	for i, b := range budgets {
		if !b.Enforce {
			continue
		}
		if left := b.Limit - levels[i].spent - levels[i].reserved; !ok || left < rem {
			rem, ok = left, true
		}
	}
	return rem, ok
}

// exceeded reports budget i as the one the hold did not fit.
func (a reserveArgs) exceeded(i int, l level) *budget.ExceededError {
	return &budget.ExceededError{
		Budget:   a.h.Budgets[i],
		ResetsAt: a.ends[i],
		Spent:    l.spent,
		Reserved: l.reserved,
	}
}

// statusOf builds the Status of b at now from its levels.
func statusOf(b budget.Budget, now time.Time, l level) budget.Status {
	start, end := b.Window(now)
	return budget.Status{Budget: b, WindowStart: start, ResetsAt: end, Spent: l.spent, Reserved: l.reserved}
}
