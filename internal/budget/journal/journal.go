package journal

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/boltcommit"
	"github.com/clade-gateway/clade-gateway/internal/budget/grant"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// Journal durably queues settlements the store could not take: those that
// failed while the store was down, in on_store_failure=allow mode the
// usage of requests forwarded without a reservation, and what a grant
// still owed when its replica shut down (grant.Closing). Replay settles each
// entry and deletes it once the store accepted it; Settle is idempotent per
// request ID, so an entry replayed twice (a crash between settling and
// deleting) is charged once. Entries must be replayed within the store's
// settled-marker lifetime (8 days) for that guarantee to hold.
type Journal struct {
	db       *bbolt.DB
	commits  *boltcommit.Committer
	n        atomic.Int64
	replayMu sync.Mutex
}

// entry is one queued settlement. Settle needs only the
// reservation's request ID and window keys (and the store's own hold
// record); Amount is kept for people reading the journal.
type entry struct {
	Reservation budget.Reservation `json:"reservation"`
	Actual      money.Nanos        `json:"actual"`
	// Grant, when set, is a grant's close instead of a settlement.
	Grant *grant.Closing `json:"grant,omitempty"`
}

// grantCloser is a store that can apply a journaled grant's close (either
// store, with or without grants).
type grantCloser interface {
	CloseGrant(ctx context.Context, c grant.Closing) error
}

var (
	bktJournal = []byte("pending")
	bktDead    = []byte("rejected")
)

// Open opens (or creates) the journal file at path. It is a bbolt
// file of its own, separate from the embedded store.
func Open(path string) (*Journal, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("budget: open journal %s: %w", path, err)
	}
	j := &Journal{db: db, commits: boltcommit.New(db)}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bktJournal)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bktDead); err != nil {
			return err
		}
		j.n.Store(int64(b.Stats().KeyN))
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("budget: open journal %s: %w", path, err)
	}
	return j, nil
}

// Close closes the journal file.
func (j *Journal) Close() error {
	j.commits.Wait()
	return j.db.Close()
}

// Append queues a settlement. It returns only after the entry is on disk
// (bbolt fsyncs every commit). Concurrent appends share a commit: while
// the store is down every refused or fail-open request appends, and one
// fsync each would queue them behind the disk.
func (j *Journal) Append(r budget.Reservation, actual money.Nanos) error {
	if err := budget.CheckSettle(r, actual); err != nil {
		return err
	}
	if err := j.add(entry{Reservation: r, Actual: actual}); err != nil {
		return fmt.Errorf("budget: journal %q: %w", r.RequestID, err)
	}
	return nil
}

// AppendGrant queues what a grant still owes the store (see grant.Closing).
func (j *Journal) AppendGrant(c grant.Closing) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := j.add(entry{Grant: &c}); err != nil {
		return fmt.Errorf("budget: journal grant %q: %w", c.ID, err)
	}
	return nil
}

func (j *Journal) add(e entry) error {
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	err = j.commits.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktJournal)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, seq), v)
	})
	if err != nil {
		return err
	}
	j.n.Add(1)
	return nil
}

// Len returns the number of entries waiting to be replayed.
func (j *Journal) Len() int { return int(j.n.Load()) }

// Replay settles every queued entry against s, oldest first, deleting each
// one the store accepted. It stops at the first entry the store cannot take
// now (unavailable or reset) and returns how many it applied. An entry the
// store refuses as invalid can never succeed; it is moved aside (kept in
// the file) so it does not block the rest.
func (j *Journal) Replay(ctx context.Context, s budget.Store) (applied int, err error) {
	j.replayMu.Lock()
	defer j.replayMu.Unlock()
	type item struct {
		key []byte
		e   entry
		raw []byte
	}
	var items []item
	err = j.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bktJournal).ForEach(func(k, v []byte) error {
			it := item{key: append([]byte(nil), k...), raw: append([]byte(nil), v...)}
			if json.Unmarshal(v, &it.e) != nil {
				it.e = entry{}
			}
			items = append(items, it)
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("budget: read journal: %w", err)
	}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return applied, err
		}
		name, serr := it.e.replay(ctx, s)
		dead := errors.Is(serr, budget.ErrInvalid)
		if serr != nil && !dead {
			return applied, fmt.Errorf("budget: replay %s: %w", name, serr)
		}
		err := j.db.Update(func(tx *bbolt.Tx) error {
			if dead {
				if err := tx.Bucket(bktDead).Put(it.key, it.raw); err != nil {
					return err
				}
			}
			return tx.Bucket(bktJournal).Delete(it.key)
		})
		if err != nil {
			// Settled but still queued: the next replay settles it again,
			// which the store ignores.
			return applied, fmt.Errorf("budget: replay %s: %w", name, err)
		}
		j.n.Add(-1)
		if !dead {
			applied++
		}
	}
	return applied, nil
}

// replay applies one entry to s; name is the entry, for errors.
func (e entry) replay(ctx context.Context, s budget.Store) (name string, err error) {
	if e.Grant == nil {
		return strconv.Quote(e.Reservation.RequestID), s.Settle(ctx, e.Reservation, e.Actual)
	}
	name = "grant " + strconv.Quote(e.Grant.ID)
	gc, ok := s.(grantCloser)
	if !ok {
		return name, fmt.Errorf("%w: %w", budget.ErrInvalid, errNoGrantCloser)
	}
	return name, gc.CloseGrant(ctx, *e.Grant)
}

// Run replays the journal every interval until ctx ends. Failures are left
// for the next round; Len shows the backlog.
func (j *Journal) Run(ctx context.Context, s budget.Store, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if j.Len() > 0 {
			_, _ = j.Replay(ctx, s)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Register exports the backlog as clade_gateway_journal_entries.
func (j *Journal) Register(reg prometheus.Registerer) error {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "clade_gateway_journal_entries",
		Help: "Settlements waiting in the local journal for the budget store.",
	}, func() float64 { return float64(j.Len()) })
	if err := reg.Register(g); err != nil {
		return fmt.Errorf("budget: register journal metrics: %w", err)
	}
	return nil
}

// errNoGrantCloser is the journal's answer for a grant entry when the
// store cannot apply grant steps.
var errNoGrantCloser = errors.New("budget: this store cannot apply a journaled grant")
