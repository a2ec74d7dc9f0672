// Package boltcommit groups concurrent bbolt updates into shared commits
// (see Committer), so that one fsync serves every update that queued
// during the previous one.
package boltcommit

import (
	"go.etcd.io/bbolt"

	"github.com/clade-gateway/clade-gateway/internal/budget/combine"
)

// maxCommitBatch bounds the updates one bbolt transaction carries.
const maxCommitBatch = 1000

// Committer runs bbolt updates for concurrent callers, several per commit:
// group commit without a delay (see combine.Combiner). bbolt's own DB.Batch waits
// MaxBatchDelay for company before committing, even when none is coming: a
// lone reserve on an idle embedded store paid that delay on the request
// path, on top of the fsync.
type Committer struct {
	db *bbolt.DB
	c  *combine.Combiner[*commitJob]
}

type commitJob struct {
	fn   func(*bbolt.Tx) error
	done chan error // buffered: the sender never blocks on it
}

// Finished implements combine.Job.
func (j *commitJob) Finished() bool { return len(j.done) > 0 }

// New returns a Committer for db.
func New(db *bbolt.DB) *Committer {
	c := &Committer{db: db}
	c.c = combine.New(maxCommitBatch, c.commit)
	return c
}

// Update runs fn in a write transaction, possibly shared with other
// updates. Like DB.Batch, fn may run more than once (when another update
// in its transaction fails, each is retried alone), so it must reset
// whatever it reports on every run.
func (c *Committer) Update(fn func(*bbolt.Tx) error) error {
	j := &commitJob{fn: fn, done: make(chan error, 1)}
	c.c.Add(j)
	return <-j.done
}

func (c *Committer) commit(batch []*commitJob) {
	if len(batch) > 1 {
		err := c.db.Update(func(tx *bbolt.Tx) error {
			for _, j := range batch {
				if err := j.fn(tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			for _, j := range batch {
				j.done <- nil
			}
			return
		}
	}
	// Alone, or after a shared transaction failed: one update's failure
	// must not fail the others.
	for _, j := range batch {
		j.done <- c.db.Update(j.fn)
	}
}

// Wait returns once no Committer goroutine is running; call it before
// closing the database.
func (c *Committer) Wait() { c.c.Wait() }
