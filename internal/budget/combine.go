package budget

import "sync"

// combinable is a queued job that knows when its result is in.
type combinable interface{ finished() bool }

// combiner sends queued jobs in batches without ever waiting for company:
// the caller that finds nobody sending sends the queue at once, and the
// jobs that arrive meanwhile go together in the next batch. Under load a
// batch is whatever queued during one round trip or commit; an idle store
// sends each job alone and immediately.
//
// There is no goroutine of its own: the sending caller hands what is left
// to a new goroutine once its own job is finished, so no caller keeps
// working for later arrivals and an idle store runs nothing.
type combiner[J combinable] struct {
	max  int       // jobs per batch
	send func([]J) // sends a batch and finishes each of its jobs

	mu     sync.Mutex
	queue  []J
	active bool // someone is sending the queue
	wg     sync.WaitGroup
}

// add queues j and, if nobody is sending, sends until j is finished. The
// caller then waits for j's result.
func (c *combiner[J]) add(j J) {
	c.mu.Lock()
	c.queue = append(c.queue, j)
	lead := !c.active
	c.active = true
	c.mu.Unlock()
	if lead {
		c.drain(j, true)
	}
}

func (c *combiner[J]) drain(own J, mine bool) {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.active = false
			c.mu.Unlock()
			return
		}
		if mine && own.finished() {
			c.wg.Add(1)
			c.mu.Unlock()
			go func() {
				defer c.wg.Done()
				var none J
				c.drain(none, false)
			}()
			return
		}
		n := min(len(c.queue), c.max)
		batch := make([]J, n)
		copy(batch, c.queue)
		clear(c.queue[:n])
		c.queue = append(c.queue[:0], c.queue[n:]...)
		c.mu.Unlock()
		c.send(batch)
	}
}

// wait returns once no handed-over sender is running.
func (c *combiner[J]) wait() { c.wg.Wait() }
