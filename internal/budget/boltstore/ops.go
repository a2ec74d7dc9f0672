package boltstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/storemetrics"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"go.etcd.io/bbolt"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// Reserve implements Store.
func (s *Store) Reserve(ctx context.Context, h budget.Hold) (r budget.Reservation, err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("reserve", start, err) }()
	now := s.opts.Clock()
	a, err := budget.PrepareHold(h, now, s.opts.DefaultTTL)
	if err != nil {
		return budget.Reservation{}, err
	}
	if len(a.Keys) == 0 {
		return budget.Reservation{RequestID: h.RequestID, Amount: h.Amount}, nil
	}
	var (
		levels  []budget.Level
		over    = -1
		dup     string
		orphans int64
		placed  money.Nanos
	)
	err = s.update(ctx, func(t *boltTx) error {
		levels, over, dup, orphans, placed = nil, -1, "", 0, h.Amount
		t.now = now.UnixMilli()
		if err := t.collect(); err != nil {
			return err
		}
		ws := make([]*bbolt.Bucket, len(a.Keys))
		for i, k := range a.Keys {
			w, err := t.window(k, deleteAt(now, a.Hold.Budgets[i].WindowKeyTTL(a.Ends[i], now)), true)
			if err != nil {
				return err
			}
			n, err := t.prune(w)
			if err != nil {
				return err
			}
			orphans += n
			ws[i] = w
		}
		rec, err := t.holdRecord(h.RequestID)
		if err != nil {
			return err
		}
		if rec != nil {
			if rec.State == stateLive && ws[0].Bucket(bktHoldIDs).Get([]byte(h.RequestID)) != nil {
				levels, placed = levelsOf(ws), rec.Amount
				return nil
			}
			dup = rec.State
			return nil
		}
		for i, b := range h.Budgets {
			if l := levelOf(ws[i]); b.Enforce && l.Spent+l.Reserved+h.Amount > b.Limit {
				over, levels = i, []budget.Level{l}
				break
			}
		}
		if over >= 0 {
			if !h.Fit.Active() {
				return nil
			}
			lv := levelsOf(ws)
			left, at, _ := room(h.Budgets, lv)
			k, ok := h.Fit.Units(left)
			if !ok {
				over, levels = at, []budget.Level{lv[at]}
				return nil
			}
			over, placed = -1, h.Fit.Amount(k)
		}
		amt := placed
		for i, b := range h.Budgets {
			if err := t.placeHold(ws[i], h.RequestID, amt, a.Expiry.UnixMilli(), i == 0, b); err != nil {
				return err
			}
		}
		levels = levelsOf(ws)
		return t.putHoldRecord(h.RequestID, &holdRecord{
			Amount: amt, State: stateLive, Expiry: a.Expiry.UnixMilli(), Keys: a.Keys,
			Delete: a.Expiry.Add(budget.SettledTTL).UnixMilli(),
		})
	})
	if err != nil {
		return budget.Reservation{}, fmt.Errorf("budget: reserve %q: %w", h.RequestID, err)
	}
	s.metrics.Orphaned(orphans)
	switch {
	case over >= 0:
		return budget.Reservation{}, a.Exceeded(over, levels[0])
	case dup != "":
		return budget.Reservation{}, fmt.Errorf("%w: %q (its hold is %s)", budget.ErrDuplicate, h.RequestID, dup)
	}
	s.flight.Add(h.RequestID, a.Expiry)
	return a.Placed(placed, levels), nil
}

// Settle implements Store.
func (s *Store) Settle(ctx context.Context, r budget.Reservation, actual money.Nanos) (err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("settle", start, err) }()
	if err := budget.CheckSettle(r, actual); err != nil {
		return err
	}
	if len(r.Keys) == 0 && len(r.Ledger) == 0 {
		s.flight.Remove(r.RequestID)
		return nil
	}
	var effects []storemetrics.Effect
	err = s.update(ctx, func(t *boltTx) error {
		effects = nil
		rec, err := t.holdRecord(r.RequestID)
		if err != nil {
			return err
		}
		if rec != nil && rec.State == stateSettled {
			return nil
		}
		keys := r.Keys
		if rec != nil {
			keys = rec.Keys // the windows the hold was really placed on
		}
		for _, k := range keys {
			e, err := t.settleWindow(k, r.RequestID, rec, actual)
			if err != nil {
				return err
			}
			effects = append(effects, e)
		}
		if err := t.addLedger(r.Ledger, s.opts.LedgerRetention); err != nil {
			return err
		}
		if rec == nil {
			rec = &holdRecord{Keys: keys}
		}
		rec.State, rec.Actual = stateSettled, actual
		rec.Delete = t.now + budget.SettledTTL.Milliseconds()
		return t.putHoldRecord(r.RequestID, rec)
	})
	if err != nil {
		return fmt.Errorf("budget: settle %q: %w", r.RequestID, err)
	}
	s.metrics.Settled(effects)
	s.flight.Remove(r.RequestID)
	return nil
}

// Extend implements Store; see redisstore.Store.Extend.
func (s *Store) Extend(ctx context.Context, r budget.Reservation, ttl time.Duration) (err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("extend", start, err) }()
	if ttl, err = budget.LeaseFor(r, ttl, s.opts.DefaultTTL); err != nil || len(r.Keys) == 0 {
		return err
	}
	var live bool
	var orphans int64
	var exp time.Time
	err = s.update(ctx, func(t *boltTx) error {
		live, orphans = false, 0
		exp = time.UnixMilli(t.now).Add(ttl)
		rec, err := t.holdRecord(r.RequestID)
		if err != nil || rec == nil || rec.State != stateLive {
			return err
		}
		ws := make([]*bbolt.Bucket, 0, len(rec.Keys))
		for _, k := range rec.Keys {
			w := t.tx.Bucket(bktWindows).Bucket([]byte(k))
			if w == nil {
				continue
			}
			n, err := t.prune(w)
			if err != nil {
				return err
			}
			orphans += n
			ws = append(ws, w)
		}
		if v := firstHold(ws, r.RequestID); len(v) != 17 || getI64(v[:8]) <= t.now {
			rec.State = stateOrphaned
			return t.putHoldRecord(r.RequestID, rec)
		}
		live = true
		if exp.UnixMilli() <= rec.Expiry {
			return nil // a lease is never shortened
		}
		for _, w := range ws {
			if err := t.moveExpiry(w, r.RequestID, exp.UnixMilli()); err != nil {
				return err
			}
		}
		rec.Expiry = exp.UnixMilli()
		rec.Delete = exp.Add(budget.SettledTTL).UnixMilli()
		return t.putHoldRecord(r.RequestID, rec)
	})
	if err != nil {
		return fmt.Errorf("budget: extend %q: %w", r.RequestID, err)
	}
	s.metrics.Orphaned(orphans)
	if live {
		s.flight.Extend(r.RequestID, exp)
	} else {
		s.flight.Remove(r.RequestID)
	}
	return nil
}

// Status implements Store.
func (s *Store) Status(ctx context.Context, budgets []budget.Budget) (st []budget.Status, err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("status", start, err) }()
	if len(budgets) == 0 {
		return nil, nil
	}
	now := s.opts.Clock()
	var orphans int64
	err = s.update(ctx, func(t *boltTx) error {
		st, orphans = make([]budget.Status, len(budgets)), 0
		t.now = now.UnixMilli()
		for i, b := range budgets {
			var l budget.Level
			if w := t.tx.Bucket(bktWindows).Bucket([]byte(b.Key(now))); w != nil {
				n, err := t.prune(w)
				if err != nil {
					return err
				}
				orphans += n
				l = levelOf(w)
			}
			st[i] = budget.StatusOf(b, now, l)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("budget: status: %w", err)
	}
	s.metrics.Orphaned(orphans)
	return st, nil
}

// Adjust implements Store.
func (s *Store) Adjust(ctx context.Context, b budget.Budget, delta money.Nanos) (err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("adjust", start, err) }()
	now := s.opts.Clock()
	_, end := b.Window(now)
	err = s.update(ctx, func(t *boltTx) error {
		w, err := t.window(b.Key(now), deleteAt(now, budget.WindowKeyTTL(end, now)), true)
		if err != nil {
			return err
		}
		if !adjustInRange(readInt(w, keySpent), int64(delta)) {
			return budget.ErrAdjustRange
		}
		return addInt(w, keySpent, int64(delta))
	})
	if err != nil {
		return fmt.Errorf("budget: adjust %s by %s: %w", b.Label(), delta, err)
	}
	return nil
}

// Ping implements Store: it fails with ErrStoreReset when the file is not
// the one this gateway's epoch names (e.g. it was deleted and recreated).
func (s *Store) Ping(ctx context.Context) (err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("ping", start, err) }()
	e, err := s.epoch.Current(ctx, (*epochs)(s))
	if err != nil {
		return err
	}
	stored, err := (*epochs)(s).Load(ctx)
	if err != nil || stored == e || s.epoch.Adopt(stored) {
		return err
	}
	return fmt.Errorf("%w: found epoch %q, trusted %q; an operator must Reinit after checking spend", budget.ErrStoreReset, stored, e)
}

// Reinit writes a fresh epoch; see redisstore.Store.Reinit.
func (s *Store) Reinit(ctx context.Context) (err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("reinit", start, err) }()
	if err := s.epoch.Reinit(ctx, (*epochs)(s)); err != nil {
		return fmt.Errorf("budget: reinit: %w", err)
	}
	return nil
}

var errCorrupt = errors.New("budget: corrupt store record")

// firstHold returns hold id's entry on the first of ws, or nil.
func firstHold(ws []*bbolt.Bucket, id string) []byte {
	if len(ws) == 0 {
		return nil
	}
	return ws[0].Bucket(bktHoldIDs).Get([]byte(id))
}
