// Package combine sends queued jobs in batches without waiting for company
// (see Combiner): the Redis store's settlements and the bbolt commits of
// the embedded store and the journal go through it.
package combine

import "sync"

// Job is a queued job that knows when its result is in.
type Job interface{ Finished() bool }

// Combiner sends queued jobs in batches without ever waiting for company:
// the caller that finds nobody sending sends the queue at once, and the
// jobs that arrive meanwhile go together in the next batch. Under load a
// batch is whatever queued during one round trip or commit; an idle store
// sends each job alone and immediately.
//
// There is no goroutine of its own: the sending caller hands what is left
// to a new goroutine once its own job is finished, so no caller keeps
// working for later arrivals and an idle store runs nothing.
type Combiner[J Job] struct {
	max  int       // jobs per batch
	send func([]J) // sends a batch and finishes each of its jobs

	mu     sync.Mutex
	queue  []J
	active bool // someone is sending the queue
	wg     sync.WaitGroup
}

// New returns a Combiner that sends at most max jobs per batch with send,
// which must finish each job of the batch it is given.
func New[J Job](max int, send func([]J)) *Combiner[J] {
	return &Combiner[J]{max: max, send: send}
}

// Add queues j and, if nobody is sending, sends until j is finished. The
// caller then waits for j's result.
func (c *Combiner[J]) Add(j J) {
	c.mu.Lock()
	c.queue = append(c.queue, j)
	lead := !c.active
	c.active = true
	c.mu.Unlock()
	if lead {
		c.drain(j.Finished)
	}
}

// drain sends batches until the queue is empty. A caller draining for its
// own job (ownDone set) hands the rest to a new goroutine once that job is
// finished.
func (c *Combiner[J]) drain(ownDone func() bool) {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.active = false
			c.mu.Unlock()
			return
		}
		if ownDone != nil && ownDone() {
			c.wg.Add(1)
			c.mu.Unlock()
			go func() {
				defer c.wg.Done()
				c.drain(nil)
			}()
			return
		}
		// The batch takes the queue's array; what does not fit moves to a
		// new one, so the two never share.
		batch := c.queue
		c.queue = nil
		if len(batch) > c.max {
			c.queue = append(c.queue, batch[c.max:]...)
			batch = batch[:c.max:c.max]
		}
		c.mu.Unlock()
		c.send(batch)
	}
}

// Wait returns once no handed-over sender is running.
func (c *Combiner[J]) Wait() { c.wg.Wait() }
