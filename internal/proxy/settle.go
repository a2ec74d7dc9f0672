package proxy

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/ledger"
	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
	"github.com/clade-gateway/clade-gateway/internal/spend"
)

const settleTimeout = 10 * time.Second

// Outcomes of a forwarded request, each charged by its own rule.
type (
	outcomeRefused struct{} // upstream answered non-2xx: not billed
	outcomeJSON    struct {
		usage meter.Usage
		valid meter.Validity
		ok    bool
		err   error
	}
	outcomeStream struct {
		res   meter.StreamResult
		valid meter.Validity
		// opaque: the stream carried output whose tokens its bytes do not
		// bound (thinking, redacted thinking, an unknown block type).
		opaque bool
		err    error
	}
	outcomeFailed struct { // no response headers
		err  error
		dial bool
	}
)

// charge is what a request costs and why.
type charge struct {
	cost  pricing.Cost
	usage meter.Usage
	cause string // "" when priced from reported usage
}

// chargeFor applies the metering rules (see the package meter doc):
//   - reported usage is priced exactly;
//   - an interrupted stream is charged its input plus an upper bound of the
//     output already streamed;
//   - an interrupted stream that carried output its bytes do not bound
//     (thinking, redacted thinking) is charged the hold's estimate;
//   - an impossible usage (impossible.go) is charged the hold's estimate;
//   - when the outcome is unknown (no usage at all, or a failure after the
//     request may have reached the API) the hold's estimate is charged,
//     because undercounting is the failure a spend cap cannot afford;
//   - requests the API refused, or that never left the gateway, cost zero.
func (h *Handler) chargeFor(c *call, o any) charge {
	switch o := o.(type) {
	case outcomeRefused:
		return charge{}
	case outcomeJSON:
		if !o.ok {
			return h.estimateCharge(c, "json_without_usage")
		}
		if why := h.impossibleUsage(c, o.usage, o.valid); why != "" {
			return h.impossibleCharge(c, why, o.usage, o.valid)
		}
		return h.price(c, o.usage, "")
	case outcomeStream:
		switch {
		case o.res.Complete():
			if why := h.impossibleUsage(c, o.res.Usage, o.valid); why != "" {
				return h.impossibleCharge(c, why, o.res.Usage, o.valid)
			}
			return h.price(c, o.res.Usage, "")
		case o.res.SawStart && o.opaque:
			// Summarised thinking bills more tokens than it shows, and
			// redacted thinking shows none: what was streamed does not
			// bound what was billed.
			return h.estimateCharge(c, "interrupted_stream_unseen_output")
		case o.res.SawStart:
			if why := h.impossibleStart(c, o.res.Usage, o.valid); why != "" {
				return h.impossibleCharge(c, why, o.res.Usage, o.valid)
			}
			return h.price(c, meter.EstimateInterrupted(o.res, c.req.MaxTokens), "interrupted_stream")
		}
		return h.estimateCharge(c, "stream_without_start")
	case outcomeFailed:
		if o.dial {
			return charge{}
		}
		return h.estimateCharge(c, "upstream_failed")
	}
	return charge{}
}

func (h *Handler) price(c *call, u meter.Usage, cause string) charge {
	if u.Model == "" {
		u.Model = c.model
	}
	cost, err := c.state.Prices.Cost(u, c.at)
	if err != nil && u.Model != c.model {
		// The response named a model the table lacks (a server-side
		// fallback, say): price it as the model that was admitted.
		u2 := u
		u2.Model = c.model
		cost, err = c.state.Prices.Cost(u2, c.at)
	}
	if err != nil {
		h.log.Error("cannot price usage; charging the estimate", append(c.logFields(), zap.Error(err))...)
		return h.estimateCharge(c, "unpriced_usage")
	}
	if cause != "" {
		h.m.estimated.WithLabelValues(cause).Inc()
	}
	ch := charge{cost: cost, usage: u, cause: cause}
	if !knownTier(u) {
		return h.unknownTierCharge(c, ch)
	}
	return ch
}

func (h *Handler) estimateCharge(c *call, cause string) charge {
	h.m.estimated.WithLabelValues(cause).Inc()
	return charge{cost: pricing.Cost{Total: c.estimate}, cause: cause}
}

// finish runs once per forwarded request when its response is over.
func (h *Handler) finish(c *call, o any) {
	c.finished.Store(true)
	if c.keepAlive != nil {
		c.keepAlive.Stop()
	}
	end := h.o.Clock()
	var ch charge
	if c.metered && o != nil {
		ch = h.chargeFor(c, o)
		h.record(c, ch)
		c.res.Ledger = ledgerLines(c, ch)
	}
	if !c.forwarded.IsZero() {
		h.m.upstreamDuration.WithLabelValues(c.modelLabel, routeName(c.route)).Observe(end.Sub(c.forwarded).Seconds())
	}
	h.m.overhead.Observe(c.overheadPre.Seconds())
	h.m.upstreamAnswered(c)
	switch {
	case !c.metered || o == nil:
	case c.res.InMemory():
		// A draw on a grant settles in memory: a goroutine would cost more
		// (a thread wake-up on a half-idle process) than the settlement.
		h.settle(c, ch.cost.Total)
	default:
		h.pending.Add(1)
		go func() {
			defer h.pending.Done()
			h.settle(c, ch.cost.Total)
		}()
	}
	if ce := h.log.Check(zap.InfoLevel, "request"); ce != nil {
		f := append(c.logFields(),
			zap.String("route", routeName(c.route)),
			zap.Int("status", c.status),
			zap.Duration("duration", end.Sub(c.start)),
			zap.String("upstream_request_id", c.upstreamID),
			zap.Bool("stream", c.stream),
		)
		if c.metered {
			f = append(f, zap.String("cost_usd", ch.cost.Total.String()))
			if ch.cause != "" {
				f = append(f, zap.String("charged_by", ch.cause))
			}
		}
		if oe := outcomeErr(o); oe != nil {
			f = append(f, logReadErr(oe))
		}
		ce.Write(f...)
	}
}

func outcomeErr(o any) error {
	switch o := o.(type) {
	case outcomeJSON:
		return o.err
	case outcomeStream:
		return o.err
	case outcomeFailed:
		return o.err
	}
	return nil
}

// settle replaces the hold with the actual cost. A settlement the store
// cannot take goes to the journal and is replayed when the store returns;
// only if the journal fails too is spend lost, and that is logged loudly.
func (h *Handler) settle(c *call, actual money.Nanos) {
	ctx := context.Background()
	if !c.res.InMemory() {
		// A draw settles in memory and never waits: a timeout would only
		// arm and stop a timer per request.
		var cancel context.CancelFunc
		ctx, cancel = settleContext()
		defer cancel()
	}
	err := h.o.Budget.Settle(ctx, c.res, actual)
	if err == nil {
		return
	}
	if jerr := h.o.Journal.Append(c.res, actual); jerr != nil {
		h.m.settleFailures.WithLabelValues("lost").Inc()
		h.log.Error("settlement lost: store and journal both failed",
			append(c.logFields(), zap.String("cost_usd", actual.String()), zap.Error(err), zap.NamedError("journal_error", jerr))...)
		return
	}
	h.m.settleFailures.WithLabelValues("journaled").Inc()
	h.log.Warn("settlement journaled for replay", append(c.logFields(), zap.Error(err))...)
}

// record exports the charge as metrics and one spend-log record.
func (h *Handler) record(c *call, ch charge) {
	h.o.Spend.Add(spend.Record{
		RequestID: c.id, UpstreamRequestID: c.upstreamID,
		Service: c.service, Team: c.svc.Team.Name, Workspace: c.svc.Workspace.Name,
		Model: safePath(firstNonEmpty(ch.usage.Model, c.model)), ModelLabel: c.modelLabel,
		AdmittedAt: c.at, Usage: ch.usage, Cost: ch.cost, ChargedBy: ch.cause,
		MaxTokensFitted: c.fitted,
		Principals:      c.spendPrincipals(),
	})
}

// ledgerLines breaks the charge down for the spend ledger, which the
// settlement writes with the budgets' charge.
func ledgerLines(c *call, ch charge) []budget.LedgerLine {
	return ledger.Lines(ledger.Charge{
		At: c.at, Workspace: c.svc.Workspace.Name, Key: c.svc.Workspace.Keys[0].Name,
		Model: safePath(firstNonEmpty(ch.usage.Model, c.model)), Cost: ch.cost, Estimated: ch.usage.Model == "",
	})
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func routeName(r route) string {
	switch r {
	case routeMessages:
		return "messages"
	case routeCountTokens:
		return "count_tokens"
	case routeBatches:
		return "batches"
	case routeFree:
		return "free"
	case routeFiles:
		return "files"
	}
	return "refused"
}
