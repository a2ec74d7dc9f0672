package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/grant"

	"go.etcd.io/bbolt"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// bktGrants holds a grantRecord per grant ID (see StepGrant).
var bktGrants = []byte("grants")

// gcGrant is the GC kind of a grant record.
const gcGrant = 'g'

const stateLost = "lost"

// grantRecord is a grant as the embedded store keeps it, the fields
// grant.lua keeps in Redis. What the grant holds is a hold entry under its
// ID in each of its windows (as a request's hold), so pruning charges it
// at its lease end like any hold.
type grantRecord struct {
	Step   int64       `json:"step"` // last applied step
	Last   string      `json:"last"` // its tag
	Exp    int64       `json:"exp"`  // lease end it set, unix ms
	State  string      `json:"state"`
	Amount money.Nanos `json:"amt"`
	Keys   []string    `json:"keys"`
	Delete int64       `json:"del"` // unix ms
}

// GrantEnv implements grant.Backend.
func (s *Store) GrantEnv() grant.Env {
	return grant.Env{Options: s.opts, Metrics: s.metrics, Flight: s.flight, Owner: s.owner}
}

// CloseGrant applies a journaled grant.Closing; see redisstore.Store.CloseGrant.
func (s *Store) CloseGrant(ctx context.Context, c grant.Closing) error {
	return grant.CloseJournaled(ctx, s, c)
}

// StepGrant implements grant.Backend in one write transaction, with
// grant.lua's rules. The transaction shares its commit (and fsync) with
// whatever else is committing (see boltcommit.Committer); a step is off the request
// path unless a request waits for its grant to grow.
func (s *Store) StepGrant(ctx context.Context, gr *grant.Spec, st *grant.Step) (rep grant.Reply, err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("grant", start, err) }()
	now := s.opts.Clock()
	grown, kept := st.Held+st.Add-st.Dec(), st.Held-st.Dec()
	var seq int64 = -1
	err = s.update(ctx, func(t *boltTx) error {
		rep, seq = grant.Reply{}, -1
		t.now = now.UnixMilli()
		if err := t.collect(); err != nil {
			return err
		}
		ws := make([]*bbolt.Bucket, len(gr.Keys))
		for i, k := range gr.Keys {
			w, err := t.window(k, deleteAt(now, budget.WindowKeyTTL(gr.Ends[i], now)), true)
			if err != nil {
				return err
			}
			n, err := t.prune(w)
			if err != nil {
				return err
			}
			rep.Orphans += n
			ws[i] = w
		}
		rep.Levels = levelsOf(ws)
		rec, err := t.grantRecord(gr.ID)
		if err != nil {
			return err
		}
		fresh := rec == nil
		if fresh {
			rec = &grantRecord{}
		}
		if rec.Step >= st.N {
			rep.Tag, rep.Exp = rec.Last, time.UnixMilli(rec.Exp)
			return nil
		}
		if rec.Step != st.N-1 {
			seq = rec.Step
			return nil
		}
		live := st.N == 1 || (rec.State == stateLive && (st.Held == 0 || holdAmount(ws[0], gr.ID) == st.Held))
		rec.Step, rec.Keys = st.N, gr.Keys
		rec.Delete = now.Add(gr.Lease + budget.SettledTTL).UnixMilli()
		if !live {
			// The orphan charge counted every estimate still in the grant;
			// replace those of the requests settled now by their actual
			// cost, and take back what is returned unused.
			for _, w := range ws {
				if err := addInt(w, keySpent, int64(st.Actual-st.Dec())); err != nil {
					return err
				}
			}
			if err := t.addLedger(st.Ledger, s.opts.LedgerRetention); err != nil {
				return err
			}
			rep.Tag, rep.Exp = stateLost, time.UnixMilli(rec.Exp)
			rec.State, rec.Last = stateLost, stateLost
			return t.putGrantRecord(gr.ID, rec, fresh)
		}
		tag, amt := "ok", grown
		if st.Add != 0 {
			for i, b := range gr.Budgets {
				if l := rep.Levels[i]; b.Enforce && l.Spent+l.Reserved+st.Add > b.Limit {
					tag, amt = "over", kept
					break
				}
			}
		}
		exp := st.Exp.UnixMilli()
		for i, w := range ws {
			if err := t.setGrantHold(w, gr.ID, amt, exp, i == 0); err != nil {
				return err
			}
			if err := addInt(w, keyRsv, int64(amt-st.Held)); err != nil {
				return err
			}
			if err := addInt(w, keySpent, int64(st.Actual)); err != nil {
				return err
			}
			if err := setLimits(w, gr.Budgets[i]); err != nil {
				return err
			}
		}
		if err := t.addLedger(st.Ledger, s.opts.LedgerRetention); err != nil {
			return err
		}
		rep.Tag, rep.Exp = tag, st.Exp
		rec.State, rec.Last, rec.Exp, rec.Amount = stateLive, tag, exp, amt
		return t.putGrantRecord(gr.ID, rec, fresh)
	})
	if err == nil && seq >= 0 {
		err = fmt.Errorf("%w: grant step out of order (applied: %d)", budget.ErrInvalid, seq)
	}
	if err != nil {
		return grant.Reply{}, fmt.Errorf("budget: grant %s step %d: %w", gr.ID, st.N, err)
	}
	if rep.Tag == "" {
		return grant.Reply{}, fmt.Errorf("%w: grant %s step %d: no outcome recorded", budget.ErrInvalid, gr.ID, st.N)
	}
	s.metrics.Orphaned(rep.Orphans)
	s.metrics.Settled(grant.StepEffects(gr, st, rep))
	return rep, nil
}

// holdAmount returns the amount of hold id on w, or -1 if it has none.
func holdAmount(w *bbolt.Bucket, id string) money.Nanos {
	if v := w.Bucket(bktHoldIDs).Get([]byte(id)); len(v) == 17 {
		return money.Nanos(getI64(v[8:16]))
	}
	return -1
}

// setGrantHold makes a grant's hold entry on w amt until exp (none for
// 0), leaving rsv to the caller, as grant.lua's ZREM and ZADD do.
func (t *boltTx) setGrantHold(w *bbolt.Bucket, id string, amt money.Nanos, exp int64, first bool) error {
	ids, exps := w.Bucket(bktHoldIDs), w.Bucket(bktHoldExps)
	if v := ids.Get([]byte(id)); len(v) == 17 {
		if err := exps.Delete(append(putI64(getI64(v[:8])), id...)); err != nil {
			return err
		}
		if err := ids.Delete([]byte(id)); err != nil {
			return err
		}
	}
	if amt == 0 {
		return nil
	}
	v := make([]byte, 17)
	binary.BigEndian.PutUint64(v[:8], uint64(exp))
	binary.BigEndian.PutUint64(v[8:16], uint64(amt))
	if first {
		v[16] = 1
	}
	if err := ids.Put([]byte(id), v); err != nil {
		return err
	}
	return exps.Put(append(putI64(exp), id...), nil)
}

// setLimits records a window's limit, enforcement and scope (for the
// overshoot metric) when they changed.
func setLimits(w *bbolt.Bucket, b budget.Budget) error {
	enf := []byte{'0'}
	if b.Enforce {
		enf[0] = '1'
	}
	if readInt(w, keyLimit) != int64(b.Limit) || w.Get(keyLimit) == nil {
		if err := w.Put(keyLimit, putI64(int64(b.Limit))); err != nil {
			return err
		}
	}
	if !bytes.Equal(w.Get(keyEnf), enf) {
		if err := w.Put(keyEnf, enf); err != nil {
			return err
		}
	}
	if string(w.Get(keyScope)) != string(b.Scope) {
		return w.Put(keyScope, []byte(b.Scope))
	}
	return nil
}

func (t *boltTx) grantRecord(id string) (*grantRecord, error) {
	v := t.tx.Bucket(bktGrants).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	var r grantRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("%w: grant %q: %w", errCorrupt, id, err)
	}
	if r.Delete <= t.now {
		return nil, nil
	}
	return &r, nil
}

// putGrantRecord writes a grant's record, and schedules its deletion when
// the record is new. Every step moves the deadline; scheduling it each
// time would leave a GC entry per step for the 8 days a record is kept
// (dozens a second under load), so the GC entry is moved only when it
// comes due while the record is still kept (see collect).
func (t *boltTx) putGrantRecord(id string, r *grantRecord, fresh bool) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := t.tx.Bucket(bktGrants).Put([]byte(id), v); err != nil {
		return err
	}
	if !fresh {
		return nil
	}
	return t.scheduleGC(r.Delete, gcGrant, id)
}

// chargeDeadGrants charges, at their amounts, the holds of every live grant
// in the file, and returns how many it charged. Only one process opens the
// file at a time (bbolt locks it), and grants are per process, so a grant
// found at open belongs to a process that is gone: it is charged now, as
// its lease end would charge it, instead of holding budget until then. The
// next step of such a grant (a journaled close) finds it lost and corrects
// the charge to the actual costs, as after a lease end.
func (t *boltTx) chargeDeadGrants() (orphans int64, err error) {
	windows := t.tx.Bucket(bktWindows)
	err = t.tx.Bucket(bktGrants).ForEach(func(id, v []byte) error {
		var r grantRecord
		if json.Unmarshal(v, &r) != nil {
			// Not a record this code wrote: opening the store must not fail
			// on it, and it places no hold to charge.
			return nil //nolint:nilerr // skipped on purpose, see above
		}
		if r.State != stateLive || r.Amount == 0 || r.Delete <= t.now {
			return nil
		}
		for i, k := range r.Keys {
			w := windows.Bucket([]byte(k))
			if w == nil {
				continue
			}
			amt := holdAmount(w, string(id))
			if amt < 0 {
				continue // pruned at its lease end already
			}
			if err := t.setGrantHold(w, string(id), 0, 0, false); err != nil {
				return err
			}
			if err := addInt(w, keySpent, int64(amt)); err != nil {
				return err
			}
			if err := addInt(w, keyRsv, -int64(amt)); err != nil {
				return err
			}
			if i == 0 {
				orphans++
			}
		}
		return nil
	})
	return orphans, err
}
