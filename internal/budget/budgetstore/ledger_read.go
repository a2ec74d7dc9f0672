package budgetstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/redis/go-redis/v9"
	"go.etcd.io/bbolt"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// maxLedgerRead bounds one read of the ledger: a little over a year of
// hours, the default retention.
const maxLedgerRead = 24 * 400

// Ledger returns the spend ledger for the UTC hours in [from, to), one
// line per hour and names, ordered by hour.
func (s *RedisStore) Ledger(ctx context.Context, from, to time.Time) ([]budget.LedgerLine, error) {
	hours := budget.LedgerHours(from, to)
	if len(hours) > maxLedgerRead {
		return nil, fmt.Errorf("%w: ledger read of %d hours (at most %d)", budget.ErrInvalid, len(hours), maxLedgerRead)
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

func (s *RedisStore) ledgerHours(ctx context.Context, hours []time.Time) ([]budget.LedgerLine, error) {
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

// bktLedger holds the embedded store's ledger: one bucket per hour
// ("2026120719"), field -> tokens (8) | nano-USD (8).
var bktLedger = []byte("ledger")

// gcLedger is the GC kind of an hour of the ledger.
const gcLedger = 'L'

// addLedger adds lines to the embedded store's ledger inside t.
func (t *boltTx) addLedger(lines []budget.LedgerLine, retention time.Duration) error {
	if len(lines) == 0 {
		return nil
	}
	root, err := t.tx.CreateBucketIfNotExists(bktLedger)
	if err != nil {
		return err
	}
	for _, l := range lines {
		name := []byte(l.Hour.UTC().Format(budget.LedgerHourFormat))
		hb := root.Bucket(name)
		if hb == nil {
			if hb, err = root.CreateBucket(name); err != nil {
				return err
			}
			at := l.Hour.UTC().Truncate(time.Hour).Add(retention).UnixMilli()
			if err := t.scheduleGC(at, gcLedger, string(name)); err != nil {
				return err
			}
		}
		f := []byte(budget.LedgerField(l))
		var tok, nan int64
		if v := hb.Get(f); len(v) == 16 {
			tok, nan = getI64(v[:8]), getI64(v[8:])
		}
		v := binary.BigEndian.AppendUint64(putI64(tok+l.Tokens), uint64(nan+int64(l.Nanos)))
		if err := hb.Put(f, v); err != nil {
			return err
		}
	}
	return nil
}

// dropLedgerHour deletes one hour of the ledger (its retention ended).
func (t *boltTx) dropLedgerHour(name []byte) error {
	root := t.tx.Bucket(bktLedger)
	if root == nil || root.Bucket(name) == nil {
		return nil
	}
	return root.DeleteBucket(name)
}

// Ledger implements the ledger read of RedisStore.Ledger.
func (s *BoltStore) Ledger(ctx context.Context, from, to time.Time) ([]budget.LedgerLine, error) {
	hours := budget.LedgerHours(from, to)
	if len(hours) > maxLedgerRead {
		return nil, fmt.Errorf("%w: ledger read of %d hours (at most %d)", budget.ErrInvalid, len(hours), maxLedgerRead)
	}
	if err := ctx.Err(); err != nil {
		return nil, unavailable(err)
	}
	var out []budget.LedgerLine
	err := s.db.View(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bktLedger)
		if root == nil {
			return nil
		}
		for _, h := range hours {
			hb := root.Bucket([]byte(h.Format(budget.LedgerHourFormat)))
			if hb == nil {
				continue
			}
			acc := map[budget.LedgerKey]budget.LedgerLine{}
			err := hb.ForEach(func(k, v []byte) error {
				var l budget.LedgerLine
				if len(v) != 16 || !budget.ParseLedgerField(string(k), &l) {
					return fmt.Errorf("budget: bad ledger entry %q", k)
				}
				l.Hour, l.Tokens, l.Nanos = h, getI64(v[:8]), money.Nanos(getI64(v[8:]))
				acc[budget.LedgerKey{Field: string(k)}] = l
				return nil
			})
			if err != nil {
				return err
			}
			out = append(out, budget.SortedLedger(acc)...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("budget: read ledger: %w", err)
	}
	return out, nil
}
