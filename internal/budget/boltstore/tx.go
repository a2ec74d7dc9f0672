package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/storemetrics"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"go.etcd.io/bbolt"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// Bolt layout (top-level buckets):
//
//	meta     "epoch" -> store epoch
//	windows  <window key> -> bucket: spent, rsv (int64), limit, enf, scope
//	         (as of the last reserve), del (unix ms, 0 = keep), and
//	           ids:  request ID -> lease end (8) | amount (8) | first (1)
//	           exp:  lease end (8) | request ID -> nil, to prune in order
//	holds    request ID -> holdRecord (JSON)
//	gc       delete-at (8) | kind (1) | name -> nil; an entry is checked
//	         against the object's current deadline before deleting, so a
//	         superseded entry is harmless
//	notes    name -> claim end (8)
//	locks    name -> lease end (8) | owner
//	records  kind -> bucket: id -> bytes
//	grants   grant ID -> grantRecord (JSON); what a grant holds is a hold
//	         entry under its ID in each of its windows
var (
	bktMeta     = []byte("meta")
	bktWindows  = []byte("windows")
	bktHolds    = []byte("holds")
	bktGC       = []byte("gc")
	bktNotes    = []byte("notes")
	bktLocks    = []byte("locks")
	bktRecords  = []byte("records")
	bktHoldIDs  = []byte("ids")
	bktHoldExps = []byte("exp")

	keyEpoch  = []byte("epoch")
	keySpent  = []byte("spent")
	keyRsv    = []byte("rsv")
	keyLimit  = []byte("limit")
	keyEnf    = []byte("enf")
	keyScope  = []byte("scope")
	keyDelete = []byte("del")
)

// GC kinds.
const (
	gcWindow = 'w'
	gcHold   = 'h'
	gcNote   = 'n'
	gcLock   = 'l'
)

// gcBatch bounds the cleanup done inside one reserve.
const gcBatch = 64

// pruneMax bounds the expired holds one call charges per window, as
// PRUNE_MAX in lib.lua does.
const pruneMax = 1000

const (
	stateLive     = "live"
	stateOrphaned = "orphaned"
	stateSettled  = "settled"
)

type holdRecord struct {
	Amount money.Nanos `json:"amt"`
	State  string      `json:"state"`
	Expiry int64       `json:"exp"` // lease end, unix ms
	Keys   []string    `json:"keys"`
	Actual money.Nanos `json:"actual,omitempty"`
	Delete int64       `json:"del"` // unix ms
}

type boltTx struct {
	tx  *bbolt.Tx
	now int64 // unix ms on the injected clock
}

func putI64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }
func getI64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }

func readInt(b *bbolt.Bucket, k []byte) int64 {
	if v := b.Get(k); len(v) == 8 {
		return getI64(v)
	}
	return 0
}

func addInt(b *bbolt.Bucket, k []byte, delta int64) error {
	if delta == 0 {
		return nil
	}
	return b.Put(k, putI64(readInt(b, k)+delta))
}

// deleteAt turns a Redis-style TTL (0 = keep) into an absolute deadline.
func deleteAt(now time.Time, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return now.Add(ttl).UnixMilli()
}

func levelOf(w *bbolt.Bucket) budget.Level {
	return budget.Level{Spent: money.Nanos(readInt(w, keySpent)), Reserved: money.Nanos(readInt(w, keyRsv))}
}

func levelsOf(ws []*bbolt.Bucket) []budget.Level {
	out := make([]budget.Level, len(ws))
	for i, w := range ws {
		out[i] = levelOf(w)
	}
	return out
}

// window returns the bucket of a budget window, creating it if asked. del
// is its deadline: a reserve knows the exact one and always sets it; a
// settlement of an unknown hold only sets it on a window it creates.
func (t *boltTx) window(key string, del int64, exact bool) (*bbolt.Bucket, error) {
	ws := t.tx.Bucket(bktWindows)
	w := ws.Bucket([]byte(key))
	if w != nil && !exact {
		return w, nil
	}
	if w == nil {
		var err error
		if w, err = ws.CreateBucket([]byte(key)); err != nil {
			return nil, err
		}
		if _, err := w.CreateBucket(bktHoldIDs); err != nil {
			return nil, err
		}
		if _, err := w.CreateBucket(bktHoldExps); err != nil {
			return nil, err
		}
	}
	if readInt(w, keyDelete) != del {
		if err := w.Put(keyDelete, putI64(del)); err != nil {
			return nil, err
		}
		if del > 0 {
			if err := t.scheduleGC(del, gcWindow, key); err != nil {
				return nil, err
			}
		}
	}
	return w, nil
}

// prune charges every hold on w whose lease ended at or before now into
// spent at its estimate, as prune in lib.lua does, and returns how many had
// w as their first budget.
func (t *boltTx) prune(w *bbolt.Bucket) (int64, error) {
	exps := w.Bucket(bktHoldExps)
	var expired [][]byte
	c := exps.Cursor()
	for k, _ := c.First(); k != nil && len(expired) < pruneMax && getI64(k[:8]) <= t.now; k, _ = c.Next() {
		expired = append(expired, append([]byte(nil), k...))
	}
	ids := w.Bucket(bktHoldIDs)
	var first int64
	for _, k := range expired {
		id := k[8:]
		if v := ids.Get(id); len(v) == 17 {
			amt := getI64(v[8:16])
			if err := addInt(w, keySpent, amt); err != nil {
				return 0, err
			}
			if err := addInt(w, keyRsv, -amt); err != nil {
				return 0, err
			}
			if v[16] == 1 {
				first++
			}
			if err := ids.Delete(id); err != nil {
				return 0, err
			}
		}
		if err := exps.Delete(k); err != nil {
			return 0, err
		}
	}
	return first, nil
}

func (t *boltTx) placeHold(w *bbolt.Bucket, id string, amt money.Nanos, exp int64, first bool, b budget.Budget) error {
	v := make([]byte, 17)
	binary.BigEndian.PutUint64(v[:8], uint64(exp))
	binary.BigEndian.PutUint64(v[8:16], uint64(amt))
	if first {
		v[16] = 1
	}
	if err := w.Bucket(bktHoldIDs).Put([]byte(id), v); err != nil {
		return err
	}
	if err := w.Bucket(bktHoldExps).Put(append(putI64(exp), id...), nil); err != nil {
		return err
	}
	if err := addInt(w, keyRsv, int64(amt)); err != nil {
		return err
	}
	enf := []byte{'0'}
	if b.Enforce {
		enf[0] = '1'
	}
	if err := w.Put(keyLimit, putI64(int64(b.Limit))); err != nil {
		return err
	}
	if err := w.Put(keyEnf, enf); err != nil {
		return err
	}
	return w.Put(keyScope, []byte(b.Scope))
}

// moveExpiry renews the lease of hold id on w.
func (t *boltTx) moveExpiry(w *bbolt.Bucket, id string, exp int64) error {
	ids := w.Bucket(bktHoldIDs)
	v := ids.Get([]byte(id))
	if len(v) != 17 {
		return nil
	}
	nv := append([]byte(nil), v...)
	old := getI64(nv[:8])
	binary.BigEndian.PutUint64(nv[:8], uint64(exp))
	exps := w.Bucket(bktHoldExps)
	if err := exps.Delete(append(putI64(old), id...)); err != nil {
		return err
	}
	if err := exps.Put(append(putI64(exp), id...), nil); err != nil {
		return err
	}
	return ids.Put([]byte(id), nv)
}

// settleWindow applies one settlement to one window, as settle.lua does.
func (t *boltTx) settleWindow(key, id string, rec *holdRecord, actual money.Nanos) (storemetrics.Effect, error) {
	w := t.tx.Bucket(bktWindows).Bucket([]byte(key))
	if w == nil && (rec != nil || actual == 0) {
		// A placed hold's window outlives its record, so only a replay
		// creates one, and a zero replay has nothing to record.
		return storemetrics.Effect{}, nil
	}
	if w == nil {
		var err error
		if w, err = t.window(key, deleteAt(time.UnixMilli(t.now), budget.KeyOnlyTTL(key, time.UnixMilli(t.now))), false); err != nil {
			return storemetrics.Effect{}, err
		}
	}
	before := levelOf(w)
	ids := w.Bucket(bktHoldIDs)
	var err error
	switch v := ids.Get([]byte(id)); {
	case rec != nil && len(v) == 17:
		exp, amt := getI64(v[:8]), getI64(v[8:16])
		if err = ids.Delete([]byte(id)); err == nil {
			err = w.Bucket(bktHoldExps).Delete(append(putI64(exp), id...))
		}
		if err == nil {
			err = addInt(w, keyRsv, -amt)
		}
		if err == nil {
			err = addInt(w, keySpent, int64(actual))
		}
	case rec != nil:
		err = addInt(w, keySpent, int64(actual-rec.Amount))
	default:
		err = addInt(w, keySpent, int64(actual))
	}
	if err != nil {
		return storemetrics.Effect{}, err
	}
	after := levelOf(w)
	return storemetrics.Effect{
		Before:   before.Spent + before.Reserved,
		After:    after.Spent + after.Reserved,
		Limit:    money.Nanos(readInt(w, keyLimit)),
		Enforced: bytes.Equal(w.Get(keyEnf), []byte{'1'}),
		Scope:    string(w.Get(keyScope)),
	}, nil
}

func (t *boltTx) holdRecord(id string) (*holdRecord, error) {
	v := t.tx.Bucket(bktHolds).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	var r holdRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("%w: hold %q: %w", errCorrupt, id, err)
	}
	if r.Delete <= t.now {
		return nil, nil // past its keeping time, as if Redis had expired it
	}
	return &r, nil
}

func (t *boltTx) putHoldRecord(id string, r *holdRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := t.tx.Bucket(bktHolds).Put([]byte(id), v); err != nil {
		return err
	}
	return t.scheduleGC(r.Delete, gcHold, id)
}

func (t *boltTx) scheduleGC(at int64, kind byte, name string) error {
	k := append(putI64(at), kind)
	return t.tx.Bucket(bktGC).Put(append(k, name...), nil)
}

// collect deletes up to gcBatch objects whose deadline has passed.
func (t *boltTx) collect() error {
	gc := t.tx.Bucket(bktGC)
	var due [][]byte
	c := gc.Cursor()
	for k, _ := c.First(); k != nil && len(due) < gcBatch && getI64(k[:8]) <= t.now; k, _ = c.Next() {
		due = append(due, append([]byte(nil), k...))
	}
	for _, k := range due {
		if len(k) < 9 {
			continue
		}
		name := k[9:]
		var err error
		switch k[8] {
		case gcWindow:
			ws := t.tx.Bucket(bktWindows)
			if w := ws.Bucket(name); w != nil {
				if d := readInt(w, keyDelete); d > 0 && d <= t.now {
					err = ws.DeleteBucket(name)
				}
			}
		case gcHold:
			hs := t.tx.Bucket(bktHolds)
			if v := hs.Get(name); v != nil {
				var r holdRecord
				if json.Unmarshal(v, &r) != nil || r.Delete <= t.now {
					err = hs.Delete(name)
				}
			}
		case gcNote:
			ns := t.tx.Bucket(bktNotes)
			if v := ns.Get(name); len(v) == 8 && getI64(v) <= t.now {
				err = ns.Delete(name)
			}
		case gcLedger:
			err = t.dropLedgerHour(name)
		case gcGrant:
			gs := t.tx.Bucket(bktGrants)
			if v := gs.Get(name); v != nil {
				var r grantRecord
				switch {
				case json.Unmarshal(v, &r) != nil || r.Delete <= t.now:
					err = gs.Delete(name)
				default: // stepped since: its one GC entry moves on
					err = t.scheduleGC(r.Delete, gcGrant, string(name))
				}
			}
		case gcLock:
			ls := t.tx.Bucket(bktLocks)
			if v := ls.Get(name); len(v) >= 8 && getI64(v[:8]) <= t.now {
				err = ls.Delete(name)
			}
		}
		if err == nil {
			err = gc.Delete(k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
