package boltstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/epoch"
	"github.com/clade-gateway/clade-gateway/internal/budget/grant"
	"github.com/clade-gateway/clade-gateway/internal/budget/storemetrics"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/boltcommit"

	"go.etcd.io/bbolt"
)

// Store keeps budgets in an embedded bbolt file for a gateway that runs
// as a single replica. It has the Redis store's semantics exactly (the same
// conformance suite runs against both); every change is one fsync'd bbolt
// transaction, shared with the changes committing at the same moment (see
// boltcommit.Committer), so admitted spend survives a crash or restart.
// Admission grants (grant.Granted) run on it as on Redis.
type Store struct {
	db      *bbolt.DB
	commits *boltcommit.Committer
	opts    storeopts.Options
	epoch   *epoch.Keeper
	metrics *storemetrics.Metrics
	flight  *storemetrics.InFlight
	owner   string
}

var (
	_ budget.Store  = (*Store)(nil)
	_ epoch.Backend = (*epochs)(nil)
	_ grant.Backend = (*Store)(nil)
)

// Open opens (or creates) the store file at path.
func Open(path string, opts storeopts.Options) (*Store, error) {
	opts, err := opts.WithDefaults()
	if err != nil {
		return nil, err
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("budget: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bktMeta, bktWindows, bktHolds, bktGC, bktNotes, bktLocks, bktRecords, bktGrants} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("budget: init %s: %w", path, err)
	}
	ek, err := epoch.New(opts.EpochFile, opts.ExpectEpoch, opts.Logger)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	var owner [12]byte
	_, _ = rand.Read(owner[:])
	s := &Store{db: db, commits: boltcommit.New(db), opts: opts, epoch: ek, flight: storemetrics.NewInFlight(opts.Clock), owner: hex.EncodeToString(owner[:])}
	if _, err := ek.Current(context.Background(), (*epochs)(s)); err != nil {
		_ = db.Close()
		return nil, err
	}
	if s.metrics, err = storemetrics.New(opts.Registerer, s.flight.Count); err != nil {
		_ = db.Close()
		return nil, err
	}
	var orphans int64
	err = db.Update(func(tx *bbolt.Tx) error {
		orphans, err = (&boltTx{tx: tx, now: opts.Clock().UnixMilli()}).chargeDeadGrants()
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("budget: charge the grants of the last process on %s: %w", path, err)
	}
	s.metrics.Orphaned(orphans)
	return s, nil
}

// Close closes the file.
func (s *Store) Close() error {
	s.commits.Wait()
	return s.db.Close()
}

// epochs is the store as the epoch keeper reads and writes it.
type epochs Store

// Load, Create and Store implement epoch.Backend.
func (s *epochs) Load(context.Context) (e string, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		e = string(tx.Bucket(bktMeta).Get(keyEpoch))
		return nil
	})
	return e, (*Store)(s).wrap(err)
}

func (s *epochs) Create(_ context.Context, e string) (stored string, err error) {
	err = s.db.Update(func(tx *bbolt.Tx) error {
		m := tx.Bucket(bktMeta)
		if v := m.Get(keyEpoch); v != nil {
			stored = string(v)
			return nil
		}
		stored = e
		return m.Put(keyEpoch, []byte(e))
	})
	return stored, (*Store)(s).wrap(err)
}

func (s *epochs) Store(_ context.Context, e string) error {
	return (*Store)(s).wrap(s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bktMeta).Put(keyEpoch, []byte(e))
	}))
}

func (s *Store) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", budget.ErrUnavailable, err)
}

// update runs fn in one write transaction after checking the epoch. A
// result of the store's logic (a refusal, a reset) is returned through fn's
// closure, never as fn's error, so only I/O failures roll back.
func (s *Store) update(ctx context.Context, fn func(t *boltTx) error) error {
	if err := ctx.Err(); err != nil {
		return s.wrap(err)
	}
	for try := 0; ; try++ {
		e, err := s.epoch.Current(ctx, (*epochs)(s))
		if err != nil {
			return err
		}
		var reset *string
		// Concurrent calls share one transaction and one fsync (a commit
		// costs milliseconds); fn may run more than once, so it resets
		// what it reports.
		err = s.commits.Update(func(tx *bbolt.Tx) error {
			reset = nil
			if stored := string(tx.Bucket(bktMeta).Get(keyEpoch)); stored != e {
				reset = &stored
				return nil
			}
			return fn(&boltTx{tx: tx, now: s.opts.Clock().UnixMilli()})
		})
		if err != nil {
			return s.wrap(err)
		}
		if reset == nil {
			return nil
		}
		if try == 0 && s.epoch.Adopt(*reset) {
			continue
		}
		return fmt.Errorf("%w: found epoch %q, trusted %q; an operator must Reinit after checking spend", budget.ErrStoreReset, *reset, e)
	}
}
