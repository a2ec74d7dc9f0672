package redisstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/redis/go-redis/v9"
)

// globEscape quotes the characters Redis MATCH patterns treat specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Owners lists the distinct owner names of scope, starting with prefix,
// that have a window in the store (current or not yet expired). It walks
// the keyspace with SCAN, so it costs time in proportion to the store's
// size: it is for the admin API, never the request path.
func (s *Store) Owners(ctx context.Context, scope budget.Scope, prefix string) (out []string, err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("owners", start, err) }()
	match := globEscape(s.keys.window(string(scope)+":"+prefix)) + "*"
	strip := s.keys.window("")
	seen := map[string]bool{}
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, match, 1000).Result()
			if err != nil {
				return err
			}
			for _, k := range keys {
				if name, ok := budget.OwnerOf(strings.TrimPrefix(k, strip)); ok && !seen[name] {
					seen[name] = true
					out = append(out, name)
				}
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		// Every key shares one hash tag, so one master has them all; which
		// one is the cluster's business.
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, s.rdb)
	}
	if err != nil {
		return nil, fmt.Errorf("budget: owners: %w", unavailable(err))
	}
	return out, nil
}
