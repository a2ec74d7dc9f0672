package boltstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// RecordReader reads an embedded store file's durable records, opened
// read-only. A running gateway holds the file's lock, so it can only be
// read while the gateway is stopped; OpenRecordReader says so instead
// of waiting.
type RecordReader struct{ db *bbolt.DB }

// OpenRecordReader opens the store file at path read-only. A missing
// file is an error, not a new empty store.
func OpenRecordReader(path string) (*RecordReader, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("budget: no embedded store at %s", path)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("budget: %s is locked by a running gateway: ask it instead (GET /admin/checklist on the admin listener)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("budget: open %s read-only: %w", path, err)
	}
	return &RecordReader{db: db}, nil
}

// Close closes the file.
func (r *RecordReader) Close() error { return r.db.Close() }

// ListRecords returns every record of kind by ID.
func (r *RecordReader) ListRecords(_ context.Context, kind string) (map[string][]byte, error) {
	m := map[string][]byte{}
	err := r.db.View(func(tx *bbolt.Tx) error {
		recs := tx.Bucket(bktRecords)
		if recs == nil {
			return nil
		}
		b := recs.Bucket([]byte(kind))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			m[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("budget: list records %s: %w", kind, err)
	}
	return m, nil
}
