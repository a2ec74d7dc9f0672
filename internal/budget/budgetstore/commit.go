package budgetstore

import "go.etcd.io/bbolt"

// maxCommitBatch bounds the updates one bbolt transaction carries.
const maxCommitBatch = 1000

// committer runs bbolt updates for concurrent callers, several per commit:
// group commit without a delay (see combiner). bbolt's own DB.Batch waits
// MaxBatchDelay for company before committing, even when none is coming: a
// lone reserve on an idle embedded store paid that delay on the request
// path, on top of the fsync.
type committer struct {
	db *bbolt.DB
	c  combiner[*commitJob]
}

type commitJob struct {
	fn   func(*bbolt.Tx) error
	done chan error // buffered: the sender never blocks on it
}

func (j *commitJob) finished() bool { return len(j.done) > 0 }

func newCommitter(db *bbolt.DB) *committer {
	c := &committer{db: db}
	c.c = combiner[*commitJob]{max: maxCommitBatch, send: c.commit}
	return c
}

// update runs fn in a write transaction, possibly shared with other
// updates. Like DB.Batch, fn may run more than once (when another update
// in its transaction fails, each is retried alone), so it must reset
// whatever it reports on every run.
func (c *committer) update(fn func(*bbolt.Tx) error) error {
	j := &commitJob{fn: fn, done: make(chan error, 1)}
	c.c.add(j)
	return <-j.done
}

func (c *committer) commit(batch []*commitJob) {
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

// wait returns once no committer goroutine is running; call it before
// closing the database.
func (c *committer) wait() { c.c.wait() }
