package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/redis/go-redis/v9"
)

// RecordReader reads a Redis store's durable records without opening
// the store: no epoch is read or created, so a one-off reader (the
// checklist command) leaves no trace and needs no running gateway.
type RecordReader struct {
	rdb     redis.UniversalClient
	keys    keyspace
	timeout time.Duration
}

// NewRecordReader reads the records under prefix ("" means the
// default), each call bounded by timeout (0 means storeopts.DefaultTimeout).
func NewRecordReader(rdb redis.UniversalClient, prefix string, timeout time.Duration) *RecordReader {
	if prefix == "" {
		prefix = storeopts.DefaultPrefix
	}
	if timeout <= 0 {
		timeout = storeopts.DefaultTimeout
	}
	return &RecordReader{rdb: rdb, keys: newKeyspace(prefix), timeout: timeout}
}

// ListRecords returns every record of kind by ID.
func (r *RecordReader) ListRecords(ctx context.Context, kind string) (map[string][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	all, err := r.rdb.HGetAll(ctx, r.keys.records(kind)).Result()
	if err != nil {
		return nil, fmt.Errorf("budget: list records %s: %w", kind, unavailable(err))
	}
	m := make(map[string][]byte, len(all))
	for k, v := range all {
		m[k] = []byte(v)
	}
	return m, nil
}
