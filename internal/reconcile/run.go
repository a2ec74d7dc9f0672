package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/adminapi"
	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// MaxDays bounds one reconciliation: the ledger's default retention.
const MaxDays = 400

// LedgerReader reads the spend ledger (both budget stores).
type LedgerReader interface {
	Ledger(ctx context.Context, from, to time.Time) ([]budget.LedgerLine, error)
}

// Reports reads Anthropic's reports (adminapi.Client).
type Reports interface {
	Usage(ctx context.Context, from, to time.Time) ([]adminapi.UsageRow, error)
	Costs(ctx context.Context, from, to time.Time) ([]adminapi.CostRow, error)
}

// Source is where a run reads from.
type Source struct {
	Policy  *policy.Policy
	Prices  Pricer
	Ledger  LedgerReader
	Reports Reports
}

// Run reconciles the UTC days from..to (inclusive) as of now.
func Run(ctx context.Context, src Source, from, to, now time.Time) (Report, error) {
	from, to = day(from), day(to)
	if to.Before(from) {
		return Report{}, fmt.Errorf("reconcile: --to %s is before --from %s", to.Format(dayFormat), from.Format(dayFormat))
	}
	if n := int(to.Sub(from).Hours()/24) + 1; n > MaxDays {
		return Report{}, fmt.Errorf("reconcile: %d days asked, at most %d per run", n, MaxDays)
	}
	end := to.AddDate(0, 0, 1)
	ledger, err := src.Ledger.Ledger(ctx, from, end)
	if err != nil {
		return Report{}, fmt.Errorf("reconcile: read the ledger: %w", err)
	}
	usage, err := src.Reports.Usage(ctx, from, end)
	if err != nil {
		return Report{}, fmt.Errorf("reconcile: %w", err)
	}
	costs, err := src.Reports.Costs(ctx, from, end)
	if err != nil {
		return Report{}, fmt.Errorf("reconcile: %w", err)
	}
	rep, err := Compare(Input{Policy: src.Policy, Prices: src.Prices, From: from, To: to, Now: now,
		Ledger: ledger, Usage: usage, Costs: costs})
	if err != nil {
		return Report{}, fmt.Errorf("reconcile: %w", err)
	}
	return rep, nil
}

func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// ParseDay reads YYYY-MM-DD as a UTC day.
func ParseDay(s string) (time.Time, error) {
	t, err := time.Parse(dayFormat, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date (YYYY-MM-DD)", s)
	}
	return t, nil
}

// DefaultRange is what a run covers without --from/--to: the last seven
// UTC days through today, so recent days are re-checked as Anthropic's
// reports settle.
func DefaultRange(now time.Time) (from, to time.Time) {
	to = day(now)
	return to.AddDate(0, 0, -7), to
}
