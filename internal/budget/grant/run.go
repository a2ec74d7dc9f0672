package grant

import (
	"context"
	"errors"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// begin claims the grant's one step slot and returns the step to send, or
// the channel that closes when the running step ends. need is the amount
// a caller waits for (0: none); closing returns everything unused.
func (gr *grant) begin(now time.Time, need money.Nanos, closing bool, o Options) (*Step, <-chan struct{}) {
	gr.mu.Lock()
	defer gr.mu.Unlock()
	if gr.running {
		return nil, gr.ran
	}
	if gr.broken {
		return nil, nil
	}
	st := gr.unsent
	if st == nil {
		st = &Step{N: gr.step + 1, Held: gr.held, Est: gr.doneEst, Actual: gr.doneActual}
		if len(gr.doneLedger) > 0 {
			st.Ledger = budget.SortedLedger(gr.doneLedger)
		}
		gr.doneEst, gr.doneActual, gr.doneLedger, gr.doneSince = 0, 0, nil, time.Time{}
		switch {
		case closing || gr.lost || now.Before(gr.coolUntil) || (need == 0 && now.Sub(gr.lastDraw) >= o.Idle):
			st.Release, gr.free = gr.free, 0
		default:
			if t := gr.target(max(need, gr.lastAmt)); gr.free < max(need, t/2) {
				st.Add = max(t, need) - gr.free
			}
		}
		gr.unsent = st
	}
	st.Exp = now.Add(gr.Lease)
	gr.running, gr.ran = true, make(chan struct{})
	return st, nil
}

// finish records a step's outcome and frees the step slot. It reports
// whether work is left for another step (settlements that arrived during
// this one, or an unused amount to return after a refused growth).
func (gr *grant) finish(st *Step, rep Reply, err error, now time.Time, o Options) (more bool) {
	gr.mu.Lock()
	defer gr.mu.Unlock()
	gr.running = false
	defer close(gr.ran) // after lastErr is set, for the callers waiting
	gr.lastErr = err
	switch {
	case errors.Is(err, budget.ErrStoreReset) || errors.Is(err, budget.ErrInvalid):
		// The store lost its data, or a bug: what the grant holds is
		// unknown. Never draw on it again.
		gr.broken, gr.unsent, gr.free = true, nil, 0
		return false
	case err != nil:
		return false // unsent stays, and is resent as it is
	}
	gr.unsent = nil
	gr.step = st.N
	gr.held = st.Held - st.Dec()
	switch rep.Tag {
	case "ok":
		gr.held += st.Add
		gr.free += st.Add
		gr.exp = rep.Exp
	case "over":
		gr.exp = rep.Exp
		gr.coolUntil = now.Add(o.Idle)
		more = gr.free > 0
	case "lost":
		gr.lost = true
		gr.lastErr = errGrantGone
		more = gr.free > 0
	}
	gr.rem, gr.hasRem = budget.Tightest(gr.Budgets, rep.Levels)
	return more || gr.settledUnsent()
}

// settledUnsent reports whether requests settled since the last step began.
func (gr *grant) settledUnsent() bool {
	return gr.doneEst > 0 || gr.doneActual > 0 || len(gr.doneLedger) > 0
}

// drained reports whether the grant holds nothing and owes nothing.
func (gr *grant) drained() bool {
	return !gr.running && gr.unsent == nil && gr.free == 0 && len(gr.drawn) == 0 &&
		!gr.settledUnsent()
}

// errGrantGone reports a grant that can no longer be drawn on (its lease
// ended in the store, or its state is unknown): the caller takes the exact
// path, and the next Reserve starts a new grant.
var errGrantGone = errors.New("budget: grant gone")

// step runs one step of gr now, in the caller's goroutine, unless one is
// running: then, when wait is set, it waits for that one and returns its
// outcome. nil means a step applied (grown or not).
func (g *Granted) step(ctx context.Context, gr *grant, need money.Nanos, closing, wait bool) error {
	st, running := gr.begin(g.opts.Clock(), need, closing, g.o)
	if st == nil {
		if running == nil {
			return errGrantGone
		}
		if !wait {
			return nil
		}
		select {
		case <-running:
			gr.mu.Lock()
			defer gr.mu.Unlock()
			return gr.lastErr
		case <-ctx.Done():
			return unavailable(ctx.Err())
		}
	}
	began := time.Now()
	rep, err := g.s.StepGrant(ctx, &gr.Spec, st)
	if err == nil { // a failed step says nothing of how long one takes
		g.pace.note(time.Since(began))
	}
	now := g.opts.Clock()
	more := gr.finish(st, rep, err, now, g.o)
	warn, failed := gr.noteStep(err, now)
	switch {
	case errors.Is(err, budget.ErrStoreReset) || errors.Is(err, budget.ErrInvalid):
		g.opts.Logger.Error("budget grant abandoned: the store no longer knows it, so its settlements cannot be charged",
			zap.String("grant", gr.ID), zap.String("settled_usd", st.Actual.String()), zap.Error(err))
	case warn:
		g.opts.Logger.Warn("budget grant step failed; it is resent, and draws stop when its lease runs low",
			zap.String("grant", gr.ID), zap.Int("failed_in_a_row", failed), zap.Error(err))
	case err == nil && failed > 0:
		g.opts.Logger.Info("budget grant steps succeed again",
			zap.String("grant", gr.ID), zap.Int("failed_in_a_row", failed))
	}
	gr.mu.Lock()
	dead := gr.lost || gr.broken
	err = gr.lastErr
	gr.mu.Unlock()
	if dead {
		g.mu.Lock()
		if g.active[gr.KeysJoin] == gr {
			delete(g.active, gr.KeysJoin)
		}
		g.mu.Unlock()
	}
	if more {
		g.flushLater(gr)
	}
	return err
}

// stepNow grows gr for a caller waiting to draw need.
func (g *Granted) stepNow(ctx context.Context, gr *grant, need money.Nanos) error {
	return g.step(ctx, gr, need, false, true)
}

// kick runs a step in the background (a growth ahead of demand).
func (g *Granted) kick(gr *grant) {
	g.bg.Add(1)
	go func() {
		defer g.bg.Done()
		_ = g.step(context.Background(), gr, 0, false, false)
	}()
}

// flushLater schedules a step for the settlements waiting, so that none
// waits longer than Flush. A busy grant's growth steps carry its
// settlements sooner, so the timer mostly finds nothing owed, or only
// settlements younger than Flush, and sends nothing: steps follow traffic
// instead of the clock.
func (g *Granted) flushLater(gr *grant) {
	gr.mu.Lock()
	defer gr.mu.Unlock() // the timer is assigned before its func can lock
	if gr.flushing {
		return
	}
	gr.flushing = true
	g.bg.Add(1)
	gr.flush = time.AfterFunc(g.o.Flush, func() { g.flushDue(gr) })
}

// flushDue runs when a flush timer fires. It steps only once the oldest
// settlement waiting has waited Flush: when a step carried the ones that
// armed the timer, it is set again for the oldest of those since. Stepping
// on every firing made a step every Flush however often growth steps ran,
// a third of all steps at 100 requests/s.
func (g *Granted) flushDue(gr *grant) {
	gr.mu.Lock()
	owed := gr.settledUnsent()
	if wait := g.o.Flush - time.Since(gr.doneSince); owed && wait > 0 && !g.stopping() {
		gr.flush.Reset(wait)
		gr.mu.Unlock()
		return
	}
	gr.flushing = false
	gr.mu.Unlock()
	defer g.bg.Done()
	if owed {
		_ = g.step(context.Background(), gr, 0, false, false)
	}
}

// stopping reports whether Close has begun: flushes then step at once.
func (g *Granted) stopping() bool {
	select {
	case <-g.stop:
		return true
	default:
		return false
	}
}

// Settle implements Store. A draw is settled in memory and charged by the
// grant's next step; its outcome then no longer depends on this call.
func (g *Granted) Settle(ctx context.Context, r budget.Reservation, actual money.Nanos) error {
	gr := drawOf(r)
	if gr == nil {
		return g.s.Settle(ctx, r, actual)
	}
	start := time.Now()
	// A draw settles on its grant's windows, whatever r.Keys says:
	// checkSettle's key checks would allocate on every request for nothing.
	if err := budget.CheckActual(r, actual); err != nil {
		return err
	}
	gr.mu.Lock()
	est, ok := gr.drawn[r.RequestID]
	if ok { // else settled before: once per request ID
		delete(gr.drawn, r.RequestID)
		if !gr.settledUnsent() {
			gr.doneSince = start
		}
		gr.doneEst += est
		gr.doneActual += actual
		if len(r.Ledger) > 0 {
			if gr.doneLedger == nil {
				gr.doneLedger = map[budget.LineKey]budget.LedgerLine{}
			}
			budget.MergeLedger(gr.doneLedger, r.Ledger)
		}
	}
	gr.mu.Unlock()
	if ok {
		g.flushLater(gr)
	}
	g.metrics.Observe("settle", start, nil)
	return nil
}

// Extend implements Store. A draw lives as long as its grant, whose lease
// the grant's steps renew: there is nothing to extend (see
// budget.Reservation.Renewed).
func (g *Granted) Extend(ctx context.Context, r budget.Reservation, ttl time.Duration) error {
	if drawOf(r) == nil {
		return g.s.Extend(ctx, r, ttl)
	}
	_, err := budget.LeaseFor(r, ttl, g.opts.DefaultTTL)
	return err
}

// tend renews leases, returns idle amounts, resends failed steps and
// forgets drained grants.
func (g *Granted) tend() {
	defer g.bg.Done()
	tick := time.NewTicker(min(g.o.Idle/4, g.o.Lease/6))
	defer tick.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-tick.C:
		}
		now := g.opts.Clock()
		g.mu.Lock()
		var due []*grant
		for id, gr := range g.all {
			gr.mu.Lock()
			idle := now.Sub(gr.lastDraw) >= g.o.Idle
			switch {
			case gr.drained() && (idle || gr.lost || gr.broken):
				delete(g.all, id)
				if g.active[gr.KeysJoin] == gr {
					delete(g.active, gr.KeysJoin)
				}
			case gr.broken || gr.running:
			case gr.unsent != nil, gr.free > 0 && idle, gr.lost && gr.free > 0,
				gr.held > 0 && gr.exp.Sub(now) < 2*gr.Lease/3,
				gr.settledUnsent() && !gr.flushing:
				due = append(due, gr)
			}
			gr.mu.Unlock()
		}
		g.mu.Unlock()
		for _, gr := range due {
			_ = g.step(context.Background(), gr, 0, false, false)
		}
	}
}

// Close returns every grant's unused amount and charges what was settled,
// then closes the store. Requests still drawn keep their part of a grant
// until its lease ends: call it after the server has drained.
func (g *Granted) Close() error {
	g.closed.Do(func() { close(g.stop) })
	g.stopFlushes()
	g.bg.Wait()
	g.mu.Lock()
	grants := make([]*grant, 0, len(g.all))
	for _, gr := range g.all {
		grants = append(grants, gr)
	}
	g.mu.Unlock()
	for _, gr := range grants {
		ctx, cancel := context.WithTimeout(context.Background(), 2*g.opts.Timeout)
		var err error
		for try := 0; try < 3 && err == nil; try++ {
			gr.mu.Lock()
			owes := gr.owes()
			gr.mu.Unlock()
			if !owes {
				break
			}
			err = g.step(ctx, gr, 0, true, true)
		}
		cancel()
		if err != nil {
			g.journalClose(gr, err)
		}
	}
	g.untrack()
	return g.s.Close()
}

// stopFlushes runs the flushes still pending now instead of when their
// timers fire: Close then waits for their steps, not for up to Flush.
func (g *Granted) stopFlushes() {
	g.mu.Lock()
	var due []*grant
	for _, gr := range g.all {
		gr.mu.Lock()
		if gr.flushing && gr.flush.Stop() {
			gr.flushing = false
			due = append(due, gr)
		}
		gr.mu.Unlock()
	}
	g.mu.Unlock()
	for _, gr := range due {
		_ = g.step(context.Background(), gr, 0, false, false)
		g.bg.Done()
	}
}

// journalClose hands what gr still owes to the journal, so that its
// settlements are charged and its unused amount returned once the store is
// back, instead of the whole grant being charged when its lease ends.
func (g *Granted) journalClose(gr *grant, stepErr error) {
	gr.mu.Lock()
	owes := gr.owes()
	gr.mu.Unlock()
	if !owes {
		return
	}
	c := gr.closeRecord()
	settled := c.DoneActual
	if c.Unsent != nil {
		settled += c.Unsent.Actual
	}
	log := g.opts.Logger.With(zap.String("grant", gr.ID), zap.String("settled_usd", settled.String()),
		zap.String("unused_usd", c.Free.String()), zap.NamedError("step_error", stepErr))
	if g.o.Journal == nil {
		log.Error("budget grant not closed: it is charged in full when its lease ends")
		return
	}
	if err := g.o.Journal.AppendGrant(c); err != nil {
		log.Error("budget grant not closed and not journaled: it is charged in full when its lease ends", zap.Error(err))
		return
	}
	log.Warn("budget grant journaled: its settlements are charged and its unused amount returned when the store is back")
}

// Status implements Store: the store's levels, which count this replica's
// grants as holds and their settled draws once a step has charged them.
func (g *Granted) Status(ctx context.Context, budgets []budget.Budget) ([]budget.Status, error) {
	return g.s.Status(ctx, budgets)
}

// Adjust implements Store.
func (g *Granted) Adjust(ctx context.Context, b budget.Budget, delta money.Nanos) error {
	return g.s.Adjust(ctx, b, delta)
}

// Ping implements Store.
func (g *Granted) Ping(ctx context.Context) error { return g.s.Ping(ctx) }

// CloseGrant applies a journaled Closing (see the store's CloseGrant),
// so the journal's replay works with or without grants.
func (g *Granted) CloseGrant(ctx context.Context, c Closing) error {
	return CloseJournaled(ctx, g.s, c)
}
