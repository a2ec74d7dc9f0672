package boltstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"go.etcd.io/bbolt"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

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

// Ledger implements the ledger read of redisstore.Store.Ledger.
func (s *Store) Ledger(ctx context.Context, from, to time.Time) ([]budget.LedgerLine, error) {
	hours := budget.LedgerHours(from, to)
	if len(hours) > budget.MaxLedgerHours {
		return nil, fmt.Errorf("%w: ledger read of %d hours (at most %d)", budget.ErrInvalid, len(hours), budget.MaxLedgerHours)
	}
	if err := ctx.Err(); err != nil {
		return nil, s.wrap(err)
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
