package budgetstore

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// ledgerSep separates the parts of a ledger field. Parts never contain it
// (ledgerPart replaces it), so a field splits back unambiguously.
const ledgerSep = "|"

// ledgerHourFormat names an hour in keys: "2026120719".
const ledgerHourFormat = "2006010215"

func ledgerPart(s string) string {
	if strings.ContainsAny(s, ledgerSep+"\n") {
		s = strings.NewReplacer(ledgerSep, "_", "\n", "_").Replace(s)
	}
	return s
}

// field is the line's name within its hour.
func ledgerField(l budget.LedgerLine) string {
	return ledgerPart(l.Workspace) + ledgerSep + ledgerPart(l.Key) + ledgerSep +
		ledgerPart(l.Model) + ledgerSep + ledgerPart(l.Component)
}

// parseLedgerField fills the names of l from a field written by field.
func parseLedgerField(f string, l *budget.LedgerLine) bool {
	p := strings.Split(f, ledgerSep)
	if len(p) != 4 {
		return false
	}
	l.Workspace, l.Key, l.Model, l.Component = p[0], p[1], p[2], p[3]
	return true
}

// checkLedger validates the ledger lines of a settlement: they must add up
// to its actual cost, so the ledger never disagrees with the budgets.
func checkLedger(r budget.Reservation, actual money.Nanos) error {
	if len(r.Ledger) == 0 {
		return nil
	}
	var sum money.Nanos
	for _, l := range r.Ledger {
		if l.Tokens < 0 || l.Nanos < 0 || l.Hour.IsZero() || l.Component == "" {
			return fmt.Errorf("%w: bad ledger line %+v in settlement of %q", budget.ErrInvalid, l, r.RequestID)
		}
		sum += l.Nanos
	}
	if sum != actual {
		return fmt.Errorf("%w: ledger of %q sums to %s, not its actual cost %s", budget.ErrInvalid, r.RequestID, sum, actual)
	}
	return nil
}

// ledgerBatch groups ledger lines by hour for one script call.
type ledgerBatch struct {
	hours []string                       // hour names, in first-seen order
	lines map[string][]budget.LedgerLine // hour name -> lines
}

func newLedgerBatch(lines []budget.LedgerLine) ledgerBatch {
	b := ledgerBatch{lines: map[string][]budget.LedgerLine{}}
	for _, l := range lines {
		h := l.Hour.UTC().Format(ledgerHourFormat)
		if _, ok := b.lines[h]; !ok {
			b.hours = append(b.hours, h)
		}
		b.lines[h] = append(b.lines[h], l)
	}
	return b
}

// args appends the ledger part of a script call (see ledger.lua): keys
// gets one hash per hour, args the line count and each line as (key index
// relative to the first ledger key, field, tokens, nanos, TTL in s).
func (b ledgerBatch) args(ks keyspace, keys []string, args []any, now time.Time, retention time.Duration) ([]string, []any) {
	n := 0
	for _, h := range b.hours {
		n += len(b.lines[h])
	}
	args = append(args, n)
	for i, h := range b.hours {
		keys = append(keys, ks.ledger(h))
		for _, l := range b.lines[h] {
			ttl := l.Hour.Add(retention).Sub(now)
			args = append(args, i+1, ledgerField(l), l.Tokens, int64(l.Nanos), max(secsOf(ttl), 1))
		}
	}
	return keys, args
}

// mergeLedger adds lines into acc, summing lines of the same hour and
// names: a grant carries the sum of many requests' lines.
func mergeLedger(acc map[ledgerKey]budget.LedgerLine, lines []budget.LedgerLine) {
	for _, l := range lines {
		k := ledgerKey{hour: l.Hour.UTC().Format(ledgerHourFormat), field: ledgerField(l)}
		a, ok := acc[k]
		if !ok {
			a = l
			a.Hour = l.Hour.UTC().Truncate(time.Hour)
			a.Tokens, a.Nanos = 0, 0
		}
		a.Tokens += l.Tokens
		a.Nanos += l.Nanos
		acc[k] = a
	}
}

type ledgerKey struct{ hour, field string }

// sortedLedger returns acc's lines ordered by hour then names.
func sortedLedger(acc map[ledgerKey]budget.LedgerLine) []budget.LedgerLine {
	out := make([]budget.LedgerLine, 0, len(acc))
	for _, l := range acc {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Hour.Equal(b.Hour) {
			return a.Hour.Before(b.Hour)
		}
		return ledgerField(a) < ledgerField(b)
	})
	return out
}

// ledgerFromHash turns one hour's stored fields ("<field>|t", "<field>|n")
// into lines.
func ledgerFromHash(hour time.Time, m map[string]string) ([]budget.LedgerLine, error) {
	acc := map[ledgerKey]budget.LedgerLine{}
	for f, v := range m {
		i := strings.LastIndex(f, ledgerSep)
		if i < 0 {
			return nil, fmt.Errorf("budget: bad ledger field %q", f)
		}
		name, kind := f[:i], f[i+1:]
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("budget: bad ledger value %q for %q: %w", v, f, err)
		}
		k := ledgerKey{hour: hour.Format(ledgerHourFormat), field: name}
		l, ok := acc[k]
		if !ok {
			l.Hour = hour
			if !parseLedgerField(name, &l) {
				return nil, fmt.Errorf("budget: bad ledger field %q", f)
			}
		}
		switch kind {
		case "t":
			l.Tokens += n
		case "n":
			l.Nanos += money.Nanos(n)
		default:
			return nil, fmt.Errorf("budget: bad ledger field %q", f)
		}
		acc[k] = l
	}
	return sortedLedger(acc), nil
}

// ledgerHours lists the UTC hours in [from, to).
func ledgerHours(from, to time.Time) []time.Time {
	from = from.UTC().Truncate(time.Hour)
	var out []time.Time
	for h := from; h.Before(to); h = h.Add(time.Hour) {
		out = append(out, h)
	}
	return out
}
