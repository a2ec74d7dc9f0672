package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/redis/go-redis/v9"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// ledgerBatch groups ledger lines by hour for one script call.
type ledgerBatch struct {
	hours []string                       // hour names, in first-seen order
	lines map[string][]budget.LedgerLine // hour name -> lines
}

func newLedgerBatch(lines []budget.LedgerLine) ledgerBatch {
	b := ledgerBatch{lines: map[string][]budget.LedgerLine{}}
	for _, l := range lines {
		h := l.Hour.UTC().Format(budget.LedgerHourFormat)
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
			args = append(args, i+1, budget.LedgerField(l), l.Tokens, int64(l.Nanos), max(secsOf(ttl), 1))
		}
	}
	return keys, args
}

// ledgerFromHash turns one hour's stored fields ("<field>|t", "<field>|n")
// into lines.
func ledgerFromHash(hour time.Time, m map[string]string) ([]budget.LedgerLine, error) {
	acc := map[budget.LedgerKey]budget.LedgerLine{}
	for f, v := range m {
		i := strings.LastIndex(f, budget.LedgerSep)
		if i < 0 {
			return nil, fmt.Errorf("budget: bad ledger field %q", f)
		}
		name, kind := f[:i], f[i+1:]
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("budget: bad ledger value %q for %q: %w", v, f, err)
		}
		k := budget.LedgerKey{Hour: hour.Format(budget.LedgerHourFormat), Field: name}
		l, ok := acc[k]
		if !ok {
			l.Hour = hour
			if !budget.ParseLedgerField(name, &l) {
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
	return budget.SortedLedger(acc), nil
}

// Ledger returns the spend ledger for the UTC hours in [from, to), one
// line per hour and names, ordered by hour.
func (s *Store) Ledger(ctx context.Context, from, to time.Time) ([]budget.LedgerLine, error) {
	hours := budget.LedgerHours(from, to)
	if len(hours) > budget.MaxLedgerHours {
		return nil, fmt.Errorf("%w: ledger read of %d hours (at most %d)", budget.ErrInvalid, len(hours), budget.MaxLedgerHours)
	}
	var out []budget.LedgerLine
	for len(hours) > 0 {
		n := min(len(hours), 168)
		part, err := s.ledgerHours(ctx, hours[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, part...)
		hours = hours[n:]
	}
	return out, nil
}

func (s *Store) ledgerHours(ctx context.Context, hours []time.Time) ([]budget.LedgerLine, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*s.opts.Timeout)
	defer cancel()
	cmds := make([]*redis.MapStringStringCmd, len(hours))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range hours {
			cmds[i] = p.HGetAll(ctx, s.keys.ledger(h.Format(budget.LedgerHourFormat)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("budget: read ledger: %w", unavailable(err))
	}
	var out []budget.LedgerLine
	for i, c := range cmds {
		lines, err := ledgerFromHash(hours[i], c.Val())
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	return out, nil
}
