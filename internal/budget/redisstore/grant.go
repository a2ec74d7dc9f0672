package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/grant"
)

// GrantEnv implements grant.Backend.
func (s *Store) GrantEnv() grant.Env {
	return grant.Env{Options: s.opts, Metrics: s.metrics, Flight: s.flight, Owner: s.owner}
}

// StepGrant implements grant.Backend with one grant.lua call.
func (s *Store) StepGrant(ctx context.Context, gr *grant.Spec, st *grant.Step) (rep grant.Reply, err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("grant", start, err) }()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	now := s.opts.Clock()
	grown, kept := st.Held+st.Add-st.Dec(), st.Held-st.Dec()
	keys := s.keys.scriptKeys(gr.ID, gr.Keys)
	args := make([]any, 0, 17+4*len(gr.Keys)+5*len(st.Ledger))
	args = append(args, "", ms(now), gr.ID, st.N, int64(st.Held), int64(grown), int64(kept), int64(st.Add),
		int64(grown-st.Held), int64(kept-st.Held), int64(st.Actual), int64(st.Actual-st.Dec()),
		ms(st.Exp), msOf(gr.Lease+budget.SettledTTL), gr.KeysJoin)
	for i, b := range gr.Budgets {
		args = append(args, int64(b.Limit), boolArg(b.Enforce), secsOf(budget.WindowKeyTTL(gr.Ends[i], now)), string(b.Scope))
	}
	lb := newLedgerBatch(st.Ledger)
	keys, args = lb.args(s.keys, keys, args, now, s.opts.LedgerRetention)
	args = append(args, len(lb.hours))
	err = s.withEpoch(ctx, func(epoch string) (*string, error) {
		args[0] = epoch
		v, err := s.run(ctx, s.scripts.grant, keys, args...)
		if err != nil {
			return nil, err
		}
		var reset *string
		rep, reset, err = parseGrantReply(v, len(gr.Keys))
		return reset, err
	})
	if err != nil {
		return grant.Reply{}, fmt.Errorf("budget: grant %s step %d: %w", gr.ID, st.N, err)
	}
	s.metrics.Orphaned(rep.Orphans)
	s.metrics.Settled(grant.StepEffects(gr, st, rep))
	return rep, nil
}

func parseGrantReply(v any, n int) (grant.Reply, *string, error) {
	tag, rest, reset, err := replyHead("grant", v)
	if err != nil || reset != nil {
		return grant.Reply{}, reset, err
	}
	if tag == "seq" {
		return grant.Reply{}, nil, fmt.Errorf("%w: grant step out of order (applied: %v)", budget.ErrInvalid, rest)
	}
	want := 2 + 2*n
	if tag == "dup" {
		want++
	}
	if len(rest) != want || (tag != "ok" && tag != "over" && tag != "lost" && tag != "dup") {
		return grant.Reply{}, nil, errReply("grant", v)
	}
	ns, ok := nanosList(rest[:2+2*n])
	if !ok {
		return grant.Reply{}, nil, errReply("grant", v)
	}
	r := grant.Reply{Tag: tag, Exp: time.UnixMilli(int64(ns[0])), Orphans: int64(ns[1])}
	for i := 0; i < n; i++ {
		r.Levels = append(r.Levels, budget.Level{Spent: ns[2+2*i], Reserved: ns[3+2*i]})
	}
	if tag == "dup" {
		r.Tag, _ = rest[want-1].(string)
		if r.Tag != "ok" && r.Tag != "over" && r.Tag != "lost" {
			return grant.Reply{}, nil, errReply("grant", v)
		}
	}
	return r, nil, nil
}

// CloseGrant applies a journaled grant.Closing (see grant.CloseJournaled),
// so that the journal's replay works with or without grants.
func (s *Store) CloseGrant(ctx context.Context, c grant.Closing) error {
	return grant.CloseJournaled(ctx, s, c)
}
