package budget

import (
	"fmt"
	"strings"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// LeaseFor validates an Extend of r and returns the lease to grant: ttl,
// or def when ttl is not positive.
func LeaseFor(r Reservation, ttl, def time.Duration) (time.Duration, error) {
	if r.RequestID == "" {
		return 0, fmt.Errorf("%w: extend without request ID", ErrInvalid)
	}
	if ttl <= 0 {
		ttl = def
	}
	return ttl, nil
}

// CheckActual validates a settlement's request ID, cost and ledger lines.
func CheckActual(r Reservation, actual money.Nanos) error {
	if r.RequestID == "" {
		return fmt.Errorf("%w: settlement without request ID", ErrInvalid)
	}
	if actual < 0 {
		return fmt.Errorf("%w: negative actual cost %s for %q", ErrInvalid, actual, r.RequestID)
	}
	return checkLedger(r, actual)
}

// CheckSettle validates a settlement: CheckActual, and windows that are
// present, distinct and newline-free.
func CheckSettle(r Reservation, actual money.Nanos) error {
	if err := CheckActual(r, actual); err != nil {
		return err
	}
	seen := make(map[string]bool, len(r.Keys))
	for _, k := range r.Keys {
		if k == "" || strings.Contains(k, "\n") || seen[k] {
			return fmt.Errorf("%w: bad or repeated budget key %q in settlement of %q", ErrInvalid, k, r.RequestID)
		}
		seen[k] = true
	}
	return nil
}

// checkLedger validates the ledger lines of a settlement: they must add up
// to its actual cost, so the ledger never disagrees with the budgets.
func checkLedger(r Reservation, actual money.Nanos) error {
	if len(r.Ledger) == 0 {
		return nil
	}
	var sum money.Nanos
	for _, l := range r.Ledger {
		if l.Tokens < 0 || l.Nanos < 0 || l.Hour.IsZero() || l.Component == "" {
			return fmt.Errorf("%w: bad ledger line %+v in settlement of %q", ErrInvalid, l, r.RequestID)
		}
		sum += l.Nanos
	}
	if sum != actual {
		return fmt.Errorf("%w: ledger of %q sums to %s, not its actual cost %s", ErrInvalid, r.RequestID, sum, actual)
	}
	return nil
}
