package redisstore

import (
	"context"
	"fmt"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/combine"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// maxSettleBatch bounds one settle.lua call: 64 requests of four
// windows run about 1,500 commands, a millisecond or two of Redis.
const maxSettleBatch = 64

// settleJob is one Settle waiting for the batcher.
type settleJob struct {
	ctx    context.Context
	r      budget.Reservation
	actual money.Nanos
	done   chan error // buffered: the batcher never blocks on a caller gone
}

// settleBatcher combines concurrent settlements of a store (see
// combine.Combiner): the settlements that arrive while one settle call is in
// flight go together in one settle.lua call, so at a few thousand
// requests per second the script call's fixed cost (the round trip's
// syscalls on both sides, Redis's script setup) is shared instead of paid
// per request. A lone settlement goes at once, so a sequential caller (the
// journal's replay) is not slowed.
type settleBatcher struct {
	s *Store
	c *combine.Combiner[*settleJob]
}

// Finished implements combine.Job.
func (j *settleJob) Finished() bool { return len(j.done) > 0 }

func newSettleBatcher(s *Store) *settleBatcher {
	b := &settleBatcher{s: s}
	b.c = combine.New(maxSettleBatch, b.send)
	return b
}

// wait returns once no handed-over sender is running.
func (b *settleBatcher) wait() { b.c.Wait() }

// do settles r, in a batch with whatever else is waiting.
func (b *settleBatcher) do(ctx context.Context, r budget.Reservation, actual money.Nanos) error {
	j := &settleJob{ctx: ctx, r: r, actual: actual, done: make(chan error, 1)}
	b.c.Add(j)
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		// A batch may still run it: a settlement is idempotent per
		// request ID, so the caller's journaled retry finds it done.
		return unavailable(ctx.Err())
	}
}

// send settles a batch, skipping callers that gave up before their turn.
func (b *settleBatcher) send(batch []*settleJob) {
	live := batch[:0] // the combiner hands each batch over, so filter in place
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.done <- unavailable(err)
			continue
		}
		live = append(live, j)
	}
	if len(live) > 0 {
		b.many(live)
	}
}

// many settles a batch of requests in one settle.lua call. A request the
// script cannot settle as given (its hold is on other windows, or the epoch
// changed) takes settle's own path, which knows how to retry.
func (b *settleBatcher) many(jobs []*settleJob) {
	s := b.s
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	items := make([]settleItem, len(jobs))
	for i, j := range jobs {
		items[i] = settleItem{id: j.r.RequestID, windows: j.r.Keys, actual: j.actual, mode: "settle", ledger: j.r.Ledger}
	}
	var replies []any
	var reset *string
	epoch, err := s.epoch.Current(ctx, (*epochs)(s))
	if err == nil {
		replies, reset, err = s.runSettle(ctx, epoch, items)
	}
	for i, j := range jobs {
		var reply any
		if replies != nil {
			reply = replies[i]
		}
		j.done <- b.result(j, reply, reset, err)
	}
}

// result is a job's outcome from its reply in a shared call.
func (b *settleBatcher) result(j *settleJob, reply any, reset *string, err error) error {
	if err != nil {
		return err
	}
	if reset != nil { // the epoch changed: settle adopts or refuses it
		return b.s.settle(j.ctx, j.r, j.actual, "settle")
	}
	rep, err := parseSettleReply(reply, len(j.r.Keys), j.actual)
	switch {
	case err != nil:
		return err
	case rep.tag == "keys":
		return b.s.settle(j.ctx, j.r, j.actual, "settle")
	}
	b.s.metrics.Settled(rep.effects)
	return nil
}

// settleItem is one request of a settle.lua call.
type settleItem struct {
	id      string
	windows []string // the window keys to settle on, in the hold's order
	actual  money.Nanos
	mode    string // "settle" or "release"
	ledger  []budget.LedgerLine
}

// runSettle makes one settle.lua call with the trusted epoch and returns
// each item's reply, or the stored epoch if it is not that one.
func (s *Store) runSettle(ctx context.Context, epoch string, items []settleItem) (replies []any, reset *string, err error) {
	now := s.opts.Clock()
	nkeys, nargs := 1, 3
	for _, it := range items {
		nkeys += 1 + 2*len(it.windows) + len(it.ledger)
		nargs += 7 + len(it.windows) + 5*len(it.ledger)
	}
	keys := make([]string, 0, nkeys)
	keys = append(keys, s.keys.epoch())
	args := make([]any, 0, nargs)
	args = append(args, epoch, msOf(budget.SettledTTL), len(items))
	for _, it := range items {
		keys = append(keys, s.keys.hold(it.id))
		for _, w := range it.windows {
			keys = append(keys, s.keys.window(w), s.keys.holdSet(w))
		}
		args = append(args, it.id, int64(it.actual), joinKeys(it.windows), it.mode, len(it.windows))
		for _, w := range it.windows {
			args = append(args, secsOf(budget.KeyOnlyTTL(w, now)))
		}
		lb := newLedgerBatch(it.ledger)
		args = append(args, len(lb.hours))
		keys, args = lb.args(s.keys, keys, args, now, s.opts.LedgerRetention)
	}
	v, err := s.run(ctx, s.scripts.settle, keys, args...)
	if err != nil {
		return nil, nil, err
	}
	tag, rest, reset, err := replyHead("settle", v)
	switch {
	case err != nil || reset != nil:
		return nil, reset, err
	case tag != "many" || len(rest) != len(items):
		return nil, nil, fmt.Errorf("%w (%d replies for %d requests)", errReply("settle", tag), len(rest), len(items))
	}
	return rest, nil, nil
}
