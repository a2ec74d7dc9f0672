package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/epoch"
	"github.com/clade-gateway/clade-gateway/internal/budget/grant"
	"github.com/clade-gateway/clade-gateway/internal/budget/storemetrics"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Store keeps budgets in Redis (standalone, Sentinel or Cluster), shared
// by every replica. Each reserve and each settle is one script call: one
// round trip, atomic, and retry-safe.
type Store struct {
	rdb     redis.UniversalClient
	opts    storeopts.Options
	keys    keyspace
	scripts scripts
	epoch   *epoch.Keeper
	metrics *storemetrics.Metrics
	flight  *storemetrics.InFlight
	owner   string         // this instance's lock owner token
	bg      sync.WaitGroup // releases still running; Close waits for them
	settles *settleBatcher
}

var (
	_ budget.Store  = (*Store)(nil)
	_ epoch.Backend = (*epochs)(nil)
	_ grant.Backend = (*Store)(nil)
)

// New returns a store on rdb. rdb stays the caller's to close.
//
// rdb must honour context deadlines (ContextTimeoutEnabled, which
// redisurl.Parse sets), or the Timeout option could not bound a call to a
// Redis that hangs. New reads or creates the store epoch; if Redis cannot be
// reached yet it still returns the store, which fails closed with
// ErrUnavailable until Redis answers.
func New(rdb redis.UniversalClient, opts storeopts.Options) (*Store, error) {
	if rdb == nil {
		return nil, fmt.Errorf("%w: nil Redis client", budget.ErrInvalid)
	}
	opts, err := opts.WithDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkContextTimeouts(rdb); err != nil {
		return nil, err
	}
	ek, err := epoch.New(opts.EpochFile, opts.ExpectEpoch, opts.Logger)
	if err != nil {
		return nil, err
	}
	var owner [12]byte
	_, _ = rand.Read(owner[:])
	s := &Store{
		rdb:     rdb,
		opts:    opts,
		keys:    newKeyspace(opts.Prefix),
		scripts: newScripts(),
		epoch:   ek,
		flight:  storemetrics.NewInFlight(opts.Clock),
		owner:   hex.EncodeToString(owner[:]),
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	if _, err := ek.Current(ctx, (*epochs)(s)); err != nil {
		if !errors.Is(err, budget.ErrUnavailable) {
			return nil, err
		}
		opts.Logger.Warn("budget store not reachable yet; admission fails closed until it is", zap.Error(err))
	} else if p := evictionPolicy(ctx, rdb); p != "" && p != "noeviction" {
		opts.Logger.Error("Redis may evict budget keys under memory pressure, silently forgetting spend; set maxmemory-policy noeviction",
			zap.String("maxmemory_policy", p))
	}
	if s.metrics, err = storemetrics.New(opts.Registerer, s.flight.Count); err != nil {
		return nil, err
	}
	s.settles = newSettleBatcher(s)
	return s, nil
}

// evictionPolicy returns Redis's maxmemory-policy, or "" if INFO is not
// allowed. Any policy but noeviction may drop window keys (they carry
// TTLs, which volatile-* policies pick first).
func evictionPolicy(ctx context.Context, rdb redis.UniversalClient) string {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, "maxmemory_policy:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func checkContextTimeouts(rdb redis.UniversalClient) error {
	enabled := true
	switch c := rdb.(type) {
	case *redis.Client:
		enabled = c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		enabled = c.Options().ContextTimeoutEnabled
	}
	if !enabled {
		return fmt.Errorf("%w: the Redis client must set ContextTimeoutEnabled so that the store timeout bounds every call", budget.ErrInvalid)
	}
	return nil
}

func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", budget.ErrUnavailable, err)
}

// epochs is the store as the epoch keeper reads and writes it: the
// epoch key, outside any script.
type epochs Store

// Load, Create and Store implement epoch.Backend.
func (s *epochs) Load(ctx context.Context) (string, error) {
	e, err := s.rdb.Get(ctx, s.keys.epoch()).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return e, unavailable(err)
}

func (s *epochs) Create(ctx context.Context, e string) (string, error) {
	if err := s.rdb.SetNX(ctx, s.keys.epoch(), e, 0).Err(); err != nil {
		return "", unavailable(err)
	}
	return s.Load(ctx)
}

func (s *epochs) Store(ctx context.Context, e string) error {
	return unavailable(s.rdb.Set(ctx, s.keys.epoch(), e, 0).Err())
}

// withEpoch runs op with the trusted epoch and turns an epoch mismatch into
// ErrStoreReset, after adopting (and retrying once with) an epoch another
// gateway's Reinit wrote.
func (s *Store) withEpoch(ctx context.Context, op func(epoch string) (reset *string, err error)) error {
	for try := 0; ; try++ {
		e, err := s.epoch.Current(ctx, (*epochs)(s))
		if err != nil {
			return err
		}
		reset, err := op(e)
		if err != nil || reset == nil {
			return err
		}
		if try == 0 && s.epoch.Adopt(*reset) {
			continue
		}
		return fmt.Errorf("%w: found epoch %q, trusted %q; an operator must Reinit after checking spend", budget.ErrStoreReset, *reset, e)
	}
}

func (s *Store) run(ctx context.Context, sc *redis.Script, keys []string, args ...any) (any, error) {
	v, err := sc.Run(ctx, s.rdb, keys, args...).Result()
	return v, unavailable(err)
}

func ms(t time.Time) int64         { return t.UnixMilli() }
func msOf(d time.Duration) int64   { return max(d.Milliseconds(), 1) }
func secsOf(d time.Duration) int64 { return int64(d / time.Second) }

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
