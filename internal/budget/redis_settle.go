package budget

import (
	"context"
	"fmt"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// maxSettleBatch bounds one settle_many.lua call: 64 requests of four
// windows run about 1,500 commands, a millisecond or two of Redis.
const maxSettleBatch = 64

// settleJob is one Settle waiting for the batcher.
type settleJob struct {
	ctx    context.Context
	r      Reservation
	actual money.Nanos
	done   chan error // buffered: the batcher never blocks on a caller gone
}

// settleBatcher combines concurrent settlements of a store (see
// combiner): the settlements that arrive while one settle call is in
// flight go together in one settle_many.lua call, so at a few thousand
// requests per second the script call's fixed cost (the round trip's
// syscalls on both sides, Redis's script setup) is shared instead of paid
// per request. A lone settlement goes at once, so a sequential caller (the
// journal's replay) is not slowed.
type settleBatcher struct {
	s *RedisStore
	c combiner[*settleJob]
}

func (j *settleJob) finished() bool { return len(j.done) > 0 }

func newSettleBatcher(s *RedisStore) *settleBatcher {
	b := &settleBatcher{s: s}
	b.c = combiner[*settleJob]{max: maxSettleBatch, send: b.send}
	return b
}

// do settles r, in a batch with whatever else is waiting.
func (b *settleBatcher) do(ctx context.Context, r Reservation, actual money.Nanos) error {
	j := &settleJob{ctx: ctx, r: r, actual: actual, done: make(chan error, 1)}
	b.c.add(j)
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
	live := batch[:0:0]
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.done <- unavailable(err)
			continue
		}
		live = append(live, j)
	}
	switch len(live) {
	case 0:
	case 1:
		j := live[0]
		j.done <- b.s.settle(j.ctx, j.r, j.actual, "settle")
	default:
		b.many(live)
	}
}

// many settles several requests in one settle_many.lua call. A request the
// script cannot settle as given (its hold is on other windows, or the epoch
// changed) takes settle's own path, which knows how to retry.
func (b *settleBatcher) many(jobs []*settleJob) {
	s := b.s
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	epoch, err := s.epoch.current(ctx, s)
	if err != nil {
		for _, j := range jobs {
			j.done <- err
		}
		return
	}
	now := s.opts.Clock()
	nkeys, nargs := 1, 3
	for _, j := range jobs {
		nkeys += 1 + 2*len(j.r.Keys)
		nargs += 5 + len(j.r.Keys)
	}
	keys := make([]string, 0, nkeys)
	keys = append(keys, s.keys.epoch())
	args := make([]any, 0, nargs)
	args = append(args, epoch, msOf(settledTTL), len(jobs))
	for _, j := range jobs {
		keys = append(keys, s.keys.hold(j.r.RequestID))
		for _, w := range j.r.Keys {
			keys = append(keys, s.keys.window(w), s.keys.holdSet(w))
		}
		args = append(args, j.r.RequestID, int64(j.actual), joinKeys(j.r.Keys), "settle", len(j.r.Keys))
		for _, w := range j.r.Keys {
			args = append(args, secsOf(keyOnlyTTL(w, now)))
		}
	}
	v, err := s.run(ctx, s.scripts.settleMany, keys, args...)
	if err != nil {
		for _, j := range jobs {
			j.done <- err
		}
		return
	}
	replies, err := parseSettleManyReply(v, len(jobs))
	if err != nil {
		for _, j := range jobs {
			j.done <- err
		}
		return
	}
	for i, j := range jobs {
		if replies == nil { // the epoch changed: settle adopts or refuses it
			j.done <- s.settle(j.ctx, j.r, j.actual, "settle")
			continue
		}
		rep, err := parseSettleReply(replies[i], len(j.r.Keys), j.actual)
		switch {
		case err != nil:
			j.done <- err
		case rep.tag == "keys" || rep.reset != nil:
			j.done <- s.settle(j.ctx, j.r, j.actual, "settle")
		default:
			s.metrics.settled(rep.effects)
			j.done <- nil
		}
	}
}

// parseSettleManyReply returns each request's settle reply, or nil replies
// for a "reset" (nothing was changed).
func parseSettleManyReply(v any, n int) ([]any, error) {
	tag, rest, reset, err := replyHead("settle_many", v)
	switch {
	case err != nil:
		return nil, err
	case reset != nil:
		return nil, nil
	case tag != "many" || len(rest) != n:
		return nil, fmt.Errorf("%w (%d replies for %d requests)", errReply("settle_many", tag), len(rest), n)
	}
	return rest, nil
}
