package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/jsonscan"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// count_tokens margin: 1% and 16 tokens.
const (
	countTokensMarginDiv = 100
	countTokensMarginAdd = 16
)

// minThinkingBudget is the API's smallest thinking.budget_tokens.
const minThinkingBudget = 1024

// maxFitAmount mirrors the store's bound on fitted amounts (2^53 nano-USD,
// about 9 million USD): a request whose worst case is above it is never
// fitted.
const maxFitAmount = 1 << 53

// fitFor returns the Fit a Messages request's hold carries: its estimate
// split into the prompt's worst case and a price per output token, with
// max_tokens allowed down to floor. The zero Fit (no fitting) when the
// service does not fit, or when no lower max_tokens would be useful.
func fitFor(r parsedRequest, s pricing.Split, est money.Nanos, floor int64) budget.Fit {
	lo, hi := fitFloor(r, floor), r.MaxTokens-1
	if lo < 1 || lo > hi || s.PerToken <= 0 || est >= maxFitAmount {
		return budget.Fit{}
	}
	if top, ok := s.For(hi); !ok || top >= maxFitAmount {
		return budget.Fit{}
	}
	return budget.Fit{Fixed: s.Fixed, PerUnit: s.PerToken, Min: lo, Max: hi}
}

// fitFloor is the smallest max_tokens a request may be fitted to: the
// service's min_max_tokens, and with extended thinking the smallest k for
// which thinkingFor(k) is at least the API's minimum budget. -1 when a
// request with thinking cannot be fitted at all (its budget is not below
// max_tokens, or under the minimum: only the API may judge those).
func fitFloor(r parsedRequest, floor int64) int64 {
	if r.ThinkingBudget <= 0 {
		return floor
	}
	if r.ThinkingBudget >= r.MaxTokens || r.ThinkingBudget < minThinkingBudget {
		return -1
	}
	// Lowered in proportion, the budget stays at the minimum for
	// k >= ceil(1024 × max_tokens / budget); kept whole, for k > budget.
	need := (minThinkingBudget*r.MaxTokens + r.ThinkingBudget - 1) / r.ThinkingBudget
	return max(floor, min(need, r.ThinkingBudget+1))
}

// thinkingFor is the thinking budget forwarded with max_tokens k: the
// client's when it is below k, else lowered in proportion so the answer
// keeps its share of k (budget × k / max_tokens, rounded down, below k).
func thinkingFor(r parsedRequest, k int64) int64 {
	if r.ThinkingBudget < k {
		return r.ThinkingBudget
	}
	hi, lo := bits.Mul64(uint64(r.ThinkingBudget), uint64(k))
	q, _ := bits.Div64(hi, lo, uint64(r.MaxTokens)) // budget < max_tokens: no overflow
	return int64(q)
}

// fitsFor returns the largest max_tokens (below the request's own) whose
// worst case fits room, and 0 if none does.
func fitsFor(r parsedRequest, s pricing.Split, room money.Nanos) int64 {
	if s.PerToken <= 0 || room < s.Fixed {
		return 0
	}
	return min(int64(room-s.Fixed)/int64(s.PerToken), r.MaxTokens-1)
}

// rewriteMaxTokens returns body with the value of every top-level
// max_tokens member replaced by maxTokens and, when thinking > 0, of every
// budget_tokens member of the top-level thinking object by thinking. Keys
// match as the request was parsed (case-insensitively, escapes decoded);
// every other byte is kept as the client sent it.
func rewriteMaxTokens(body []byte, maxTokens, thinking int64) ([]byte, bool) {
	type span struct {
		at, end int
		v       int64
	}
	var spans []span
	offset := func(whole, part []byte) int { return cap(whole) - cap(part) }
	var v jsonscan.Validator
	ok := v.Members(body, func(key, val []byte) {
		switch {
		case keyIn(key, []string{"max_tokens"}):
			at := offset(body, val)
			spans = append(spans, span{at, at + len(val), maxTokens})
		case thinking > 0 && keyIn(key, []string{"thinking"}) && len(val) > 0 && val[0] == '{':
			var inner jsonscan.Validator
			inner.Members(val, func(k, tv []byte) {
				if keyIn(k, []string{"budget_tokens"}) {
					at := offset(body, tv)
					spans = append(spans, span{at, at + len(tv), thinking})
				}
			})
		}
	})
	if !ok || len(spans) == 0 {
		return nil, false
	}
	var out bytes.Buffer
	out.Grow(len(body))
	prev := 0
	for _, s := range spans {
		out.Write(body[prev:s.at])
		out.WriteString(strconv.FormatInt(s.v, 10))
		prev = s.end
	}
	out.Write(body[prev:])
	return out.Bytes(), true
}

// applyFit lowers the forwarded max_tokens (and thinking budget) to what
// the store fitted the hold to.
func (h *Handler) applyFit(c *call) error {
	k := c.res.Fitted
	var thinking int64
	if c.req.ThinkingBudget > 0 {
		if t := thinkingFor(c.req, k); t != c.req.ThinkingBudget {
			thinking = t // lowered; a budget kept whole keeps its bytes
		}
	}
	body, ok := rewriteMaxTokens(c.body, k, thinking)
	if !ok {
		// parseMessages read max_tokens from this body, so it is there.
		return fmt.Errorf("proxy: max_tokens not found to fit in a parsed body")
	}
	c.body, c.fitted = body, k
	// A response charged by estimate is charged the fitted hold, and an
	// interrupted stream's output is bounded by the fitted max_tokens: no
	// bill above the hold.
	c.estimate = c.res.Amount
	c.req.MaxTokens = k
	if thinking > 0 {
		c.req.ThinkingBudget = thinking
	}
	h.m.fitted.WithLabelValues(c.service, c.modelLabel).Inc()
	return nil
}

// overBudget handles a Messages request its budgets refused. Under
// fit_max_tokens it first tries to make the request fit on better
// knowledge: the exact prompt size from count_tokens, and the room that
// requests in flight hold and will give back when they settle. What is
// still refused says what it needed and what would fit.
func (h *Handler) overBudget(ctx context.Context, in http.Header, c *call, pr pricing.Request, est money.Nanos, err error) error {
	var ex *budget.ExceededError
	if !c.req.Bounds.SingleModel() {
		// Fallbacks and advisors bill their own output, which max_tokens
		// alone does not bound: such a request is never fitted, and what
		// would fit is not known.
		if !errors.As(err, &ex) {
			return err
		}
		return &budgetRefusal{ex: ex, needed: est, maxTokens: c.req.MaxTokens}
	}
	if !c.hasSplit {
		s, serr := c.state.Prices.EstimateSplit(pr, c.at)
		if serr != nil {
			return err
		}
		c.split, c.hasSplit = s, true
	}
	if c.svc.Fit.Enabled && !c.counted && errors.As(err, &ex) && ex.Spent < ex.Budget.Limit {
		// Only when spend leaves room: else no prompt size could fit.
		if e := h.exactPrompt(ctx, in, c, &pr, est); e < est {
			est = e
			err = h.reserve(ctx, c, est, h.o.HoldTTL)
		}
	}
	if c.svc.Fit.Enabled {
		err = h.waitForRoom(ctx, c, est, err)
		if errors.As(err, &ex) {
			h.noteLeft(c.service, budget.Reservation{Remaining: ex.Budget.Limit - ex.Spent - ex.Reserved, HasRemaining: true})
		}
		if err == nil {
			h.noteLeft(c.service, c.res)
			if c.res.Fitted > 0 {
				return h.applyFit(c)
			}
			return nil
		}
	}
	if !errors.As(err, &ex) {
		return err
	}
	left := max(ex.Budget.Limit-ex.Spent-ex.Reserved, 0)
	smallest, _ := c.split.For(min(c.req.MaxTokens, max(fitFloor(c.req, c.svc.Fit.MinMaxTokens), 1)))
	return &budgetRefusal{ex: ex, needed: est, maxTokens: c.req.MaxTokens,
		fits: fitsFor(c.req, c.split, left), smallest: smallest}
}

// exactPrompt asks count_tokens for the prompt's size and, when that
// bound is below the byte bound, returns the tighter estimate with c's
// split and fit made from it; else est unchanged.
func (h *Handler) exactPrompt(ctx context.Context, in http.Header, c *call, pr *pricing.Request, est money.Nanos) money.Nanos {
	c.counted = true
	n, ok := h.countTokens(ctx, in, c)
	if !ok {
		return est
	}
	// The API documents its count as one that billing may differ from by
	// a small amount: a margin keeps the bound above it.
	tight := *pr
	tight.PromptTokens = n + n/countTokensMarginDiv + countTokensMarginAdd
	e, err := c.state.Prices.Estimate(tight, c.at)
	if err != nil || e >= est {
		return est
	}
	s, err := c.state.Prices.EstimateSplit(tight, c.at)
	if err != nil {
		return est
	}
	*pr, c.split = tight, s
	c.fit = fitFor(c.req, s, e, c.svc.Fit.MinMaxTokens)
	return e
}

// nearCap reports whether a request of est is likely not to fit whole:
// its service's tightest budget had less than est left after its last
// hold. Only then is count_tokens asked before reserving.
func (h *Handler) nearCap(service string, est money.Nanos) bool {
	v, ok := h.left.Load(service)
	return ok && money.Nanos(v.(*atomic.Int64).Load()) < est
}

// noteLeft records what the service's tightest budget has left after a
// hold, for nearCap.
func (h *Handler) noteLeft(service string, r budget.Reservation) {
	if !r.HasRemaining {
		return
	}
	v, ok := h.left.Load(service)
	if !ok {
		v, _ = h.left.LoadOrStore(service, new(atomic.Int64))
	}
	v.(*atomic.Int64).Store(int64(r.Remaining))
}

// waitForRoom retries a refused hold while the room it lacks is held by
// requests in flight, which give back all but their cost when they
// settle: near a cap, a burst of concurrent requests would otherwise be
// refused while the cap is not reached. It gives up after FitWait, or at
// once when spend alone leaves no room for the smallest useful request.
func (h *Handler) waitForRoom(ctx context.Context, c *call, est money.Nanos, err error) error {
	need := est
	if c.fit.PerUnit > 0 {
		need, _ = c.split.For(c.fit.Min)
	}
	deadline := time.Now().Add(h.o.FitWait)
	pause := 10 * time.Millisecond
	for {
		var ex *budget.ExceededError
		if !errors.As(err, &ex) || ex.Reserved <= 0 || ex.Budget.Limit-ex.Spent < need || time.Now().Add(pause).After(deadline) {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		pause = min(2*pause, 200*time.Millisecond)
		err = h.reserve(ctx, c, est, h.o.HoldTTL)
		if errors.Is(err, budget.ErrOverBudget) {
			continue
		}
		if err == nil {
			h.m.waited.WithLabelValues(c.service).Inc()
		}
		return err
	}
}
