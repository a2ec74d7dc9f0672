package boltstore

import (
	"bytes"
	"context"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"go.etcd.io/bbolt"
)

// Owners implements the same listing over the bbolt windows bucket.
func (s *Store) Owners(ctx context.Context, scope budget.Scope, prefix string) (out []string, err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("owners", start, err) }()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := []byte(string(scope) + ":" + prefix)
	seen := map[string]bool{}
	err = s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bktWindows).Cursor()
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			if name, ok := budget.OwnerOf(string(k)); ok && !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap(err)
	}
	return out, nil
}
