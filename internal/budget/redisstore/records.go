package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Small shared state for other packages: once-only notifications, lease
// locks and durable records. They live under the same hash tag as the
// budgets, so the same Redis (and its epoch) serves them.

// ClaimNotification reports whether this call is the first, across all
// replicas, to claim key within ttl (e.g. "alert_at 80% crossed for this
// budget window"). Expiry follows the injected clock.
func (s *Store) ClaimNotification(ctx context.Context, key string, ttl time.Duration) (ok bool, err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("notify", start, err) }()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	now := s.opts.Clock()
	v, err := s.run(ctx, s.scripts.notify, []string{s.keys.note(key)}, ms(now), ms(now.Add(ttl)), msOf(ttl))
	if err != nil {
		return false, fmt.Errorf("budget: claim notification %q: %w", key, err)
	}
	return parseClaimReply("notify", v)
}

// TryLock reports whether this store instance holds the lease lock name
// until ttl from now; calling it again while holding renews the lease.
// Expiry follows the injected clock.
func (s *Store) TryLock(ctx context.Context, name string, ttl time.Duration) (ok bool, err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("lock", start, err) }()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	now := s.opts.Clock()
	v, err := s.run(ctx, s.scripts.lock, []string{s.keys.lock(name)}, s.owner, ms(now), ms(now.Add(ttl)), msOf(ttl))
	if err != nil {
		return false, fmt.Errorf("budget: lock %q: %w", name, err)
	}
	return parseClaimReply("lock", v)
}

// PutRecord stores a small durable record (e.g. a batch being tracked).
func (s *Store) PutRecord(ctx context.Context, kind, id string, v []byte) (err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("record", start, err) }()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	if err := s.rdb.HSet(ctx, s.keys.records(kind), id, v).Err(); err != nil {
		return fmt.Errorf("budget: put record %s/%s: %w", kind, id, unavailable(err))
	}
	return nil
}

// GetRecord returns a record and whether it exists.
func (s *Store) GetRecord(ctx context.Context, kind, id string) (v []byte, ok bool, err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("record", start, err) }()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	v, err = s.rdb.HGet(ctx, s.keys.records(kind), id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("budget: get record %s/%s: %w", kind, id, unavailable(err))
	}
	return v, true, nil
}

// DeleteRecord removes a record; removing a missing one is not an error.
func (s *Store) DeleteRecord(ctx context.Context, kind, id string) (err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("record", start, err) }()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	if err := s.rdb.HDel(ctx, s.keys.records(kind), id).Err(); err != nil {
		return fmt.Errorf("budget: delete record %s/%s: %w", kind, id, unavailable(err))
	}
	return nil
}

// ListRecords returns every record of kind by ID.
func (s *Store) ListRecords(ctx context.Context, kind string) (m map[string][]byte, err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("record", start, err) }()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	all, err := s.rdb.HGetAll(ctx, s.keys.records(kind)).Result()
	if err != nil {
		return nil, fmt.Errorf("budget: list records %s: %w", kind, unavailable(err))
	}
	m = make(map[string][]byte, len(all))
	for k, v := range all {
		m[k] = []byte(v)
	}
	return m, nil
}
