package boltstore

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// ClaimNotification reports whether this call is the first to claim key
// within ttl.
func (s *Store) ClaimNotification(ctx context.Context, key string, ttl time.Duration) (ok bool, err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("notify", start, err) }()
	err = s.update(ctx, func(t *boltTx) error {
		ok = false
		b := t.tx.Bucket(bktNotes)
		if v := b.Get([]byte(key)); len(v) == 8 && getI64(v) > t.now {
			return nil
		}
		ok = true
		until := t.now + ttl.Milliseconds()
		if err := b.Put([]byte(key), putI64(until)); err != nil {
			return err
		}
		return t.scheduleGC(until, gcNote, key)
	})
	if err != nil {
		return false, fmt.Errorf("budget: claim notification %q: %w", key, err)
	}
	return ok, nil
}

// TryLock reports whether this store instance holds the lease lock name
// until ttl from now; calling it again while holding renews the lease.
func (s *Store) TryLock(ctx context.Context, name string, ttl time.Duration) (ok bool, err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("lock", start, err) }()
	err = s.update(ctx, func(t *boltTx) error {
		ok = false
		b := t.tx.Bucket(bktLocks)
		if v := b.Get([]byte(name)); len(v) >= 8 && string(v[8:]) != s.owner && getI64(v[:8]) > t.now {
			return nil
		}
		ok = true
		until := t.now + ttl.Milliseconds()
		if err := b.Put([]byte(name), append(putI64(until), s.owner...)); err != nil {
			return err
		}
		return t.scheduleGC(until, gcLock, name)
	})
	if err != nil {
		return false, fmt.Errorf("budget: lock %q: %w", name, err)
	}
	return ok, nil
}

// PutRecord stores a small durable record.
func (s *Store) PutRecord(ctx context.Context, kind, id string, v []byte) (err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("record", start, err) }()
	err = s.update(ctx, func(t *boltTx) error {
		b, err := t.tx.Bucket(bktRecords).CreateBucketIfNotExists([]byte(kind))
		if err != nil {
			return err
		}
		return b.Put([]byte(id), v)
	})
	if err != nil {
		return fmt.Errorf("budget: put record %s/%s: %w", kind, id, err)
	}
	return nil
}

// GetRecord returns a record and whether it exists.
func (s *Store) GetRecord(ctx context.Context, kind, id string) (v []byte, ok bool, err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("record", start, err) }()
	err = s.db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bktRecords).Bucket([]byte(kind)); b != nil {
			if got := b.Get([]byte(id)); got != nil {
				v, ok = append([]byte(nil), got...), true
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("budget: get record %s/%s: %w", kind, id, s.wrap(err))
	}
	return v, ok, nil
}

// DeleteRecord removes a record; removing a missing one is not an error.
func (s *Store) DeleteRecord(ctx context.Context, kind, id string) (err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("record", start, err) }()
	err = s.update(ctx, func(t *boltTx) error {
		if b := t.tx.Bucket(bktRecords).Bucket([]byte(kind)); b != nil {
			return b.Delete([]byte(id))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("budget: delete record %s/%s: %w", kind, id, err)
	}
	return nil
}

// ListRecords returns every record of kind by ID.
func (s *Store) ListRecords(ctx context.Context, kind string) (m map[string][]byte, err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("record", start, err) }()
	m = make(map[string][]byte)
	err = s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktRecords).Bucket([]byte(kind))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			m[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("budget: list records %s: %w", kind, s.wrap(err))
	}
	return m, nil
}
