package budgetstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/storemetrics"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// grantStep is one step of a grant (see grantBackend): settle what
// finished, return what is unused, grow if asked, renew the lease. A step
// whose outcome is unknown (the call failed) is resent with the same
// number and amounts, so the store applies it at most once.
type grantStep struct {
	n       int64
	held    money.Nanos         // the grant's amount before the step
	add     money.Nanos         // growth asked
	est     money.Nanos         // estimates of the requests settled in this step
	actual  money.Nanos         // their actual cost
	release money.Nanos         // unused amount returned
	exp     time.Time           // lease end asked
	ledger  []budget.LedgerLine // ledger lines of the requests settled in this step
}

func (st *grantStep) dec() money.Nanos { return st.est + st.release }

// grantReply is what the store did with a step.
type grantReply struct {
	tag     string // ok, over, lost (a "dup" reply carries the first tag)
	exp     time.Time
	orphans int64
	levels  []budget.Level // after the step
}

// env implements grantBackend.
func (s *RedisStore) env() storeEnv {
	return storeEnv{opts: s.opts, metrics: s.metrics, flight: s.flight, owner: s.owner}
}

// stepGrant implements grantBackend with one grant.lua call.
func (s *RedisStore) stepGrant(ctx context.Context, gr *grantSpec, st *grantStep) (rep grantReply, err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("grant", start, err) }()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	now := s.opts.Clock()
	grown, kept := st.held+st.add-st.dec(), st.held-st.dec()
	keys := s.keys.scriptKeys(gr.id, gr.keys)
	args := make([]any, 0, 17+4*len(gr.keys)+5*len(st.ledger))
	args = append(args, "", ms(now), gr.id, st.n, int64(st.held), int64(grown), int64(kept), int64(st.add),
		int64(grown-st.held), int64(kept-st.held), int64(st.actual), int64(st.actual-st.dec()),
		ms(st.exp), msOf(gr.lease+budget.SettledTTL), gr.keysJoin)
	for i, b := range gr.budgets {
		args = append(args, int64(b.Limit), boolArg(b.Enforce), secsOf(budget.WindowKeyTTL(gr.ends[i], now)), string(b.Scope))
	}
	lb := newLedgerBatch(st.ledger)
	keys, args = lb.args(s.keys, keys, args, now, s.opts.LedgerRetention)
	args = append(args, len(lb.hours))
	err = s.withEpoch(ctx, func(epoch string) (*string, error) {
		args[0] = epoch
		v, err := s.run(ctx, s.scripts.grant, keys, args...)
		if err != nil {
			return nil, err
		}
		var reset *string
		rep, reset, err = parseGrantReply(v, len(gr.keys))
		return reset, err
	})
	if err != nil {
		return grantReply{}, fmt.Errorf("budget: grant %s step %d: %w", gr.id, st.n, err)
	}
	s.metrics.Orphaned(rep.orphans)
	s.metrics.Settled(stepEffects(gr, st, rep))
	return rep, nil
}

// stepEffects is what an applied step did to each window, for the
// overshoot metric. The reply's levels came from before the step; this
// adds the step's changes to them exactly, so the grant then reads the
// levels after it.
func stepEffects(gr *grantSpec, st *grantStep, rep grantReply) []storemetrics.Effect {
	if rep.tag != "ok" && rep.tag != "over" {
		return nil
	}
	drsv := -st.dec()
	if rep.tag == "ok" {
		drsv += st.add
	}
	effects := make([]storemetrics.Effect, 0, len(rep.levels))
	for i := range rep.levels {
		l := &rep.levels[i]
		before := l.Spent + l.Reserved
		l.Spent += st.actual
		l.Reserved += drsv
		b := gr.budgets[i]
		effects = append(effects, storemetrics.Effect{Before: before, After: l.Spent + l.Reserved,
			Limit: b.Limit, Enforced: b.Enforce, Scope: string(b.Scope)})
	}
	return effects
}

func parseGrantReply(v any, n int) (grantReply, *string, error) {
	tag, rest, reset, err := replyHead("grant", v)
	if err != nil || reset != nil {
		return grantReply{}, reset, err
	}
	if tag == "seq" {
		return grantReply{}, nil, fmt.Errorf("%w: grant step out of order (applied: %v)", budget.ErrInvalid, rest)
	}
	want := 2 + 2*n
	if tag == "dup" {
		want++
	}
	if len(rest) != want || (tag != "ok" && tag != "over" && tag != "lost" && tag != "dup") {
		return grantReply{}, nil, errReply("grant", v)
	}
	ns, ok := nanosList(rest[:2+2*n])
	if !ok {
		return grantReply{}, nil, errReply("grant", v)
	}
	r := grantReply{tag: tag, exp: time.UnixMilli(int64(ns[0])), orphans: int64(ns[1])}
	for i := 0; i < n; i++ {
		r.levels = append(r.levels, budget.Level{Spent: ns[2+2*i], Reserved: ns[3+2*i]})
	}
	if tag == "dup" {
		r.tag, _ = rest[want-1].(string)
		if r.tag != "ok" && r.tag != "over" && r.tag != "lost" {
			return grantReply{}, nil, errReply("grant", v)
		}
	}
	return r, nil, nil
}

// grantID names a grant: the store's owner token (random per process) and
// a counter. The prefix keeps it apart from request IDs in the hold keys.
func grantID(owner string, n uint64) string {
	return "grant:" + owner + ":" + strconv.FormatUint(n, 10)
}
