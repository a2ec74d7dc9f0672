package proxy

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/ledger"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/spend"
)

const settleTimeout = 10 * time.Second

// finish runs once per forwarded request when its response is over.
func (h *Handler) finish(c *call, o outcome) {
	c.finished.Store(true)
	if c.keepAlive != nil {
		c.keepAlive.Stop()
	}
	end := h.o.Clock()
	_, unsettled := o.(outcomeUnsettled)
	owed := c.metered && !unsettled // a hold to settle now
	var ch charge
	var lines []budget.LedgerLine
	if owed {
		ch = h.chargeFor(c, o)
		h.record(c, ch)
		lines = ledgerLines(c, ch)
	}
	if !c.forwarded.IsZero() {
		h.m.forRoute(c.modelLabel, c.route).duration.Observe(end.Sub(c.forwarded).Seconds())
	}
	h.m.overhead.Observe(c.overheadPre.Seconds())
	h.m.upstreamAnswered(c)
	switch {
	case !owed:
	case c.res.InMemory():
		// A draw on a grant settles in memory: a goroutine would cost more
		// (a thread wake-up on a half-idle process) than the settlement.
		h.settle(c, ch.cost.Total, lines)
	default:
		h.pending.Add(1)
		go func() {
			defer h.pending.Done()
			h.settle(c, ch.cost.Total, lines)
		}()
	}
	h.logRequest(c, o, ch, end)
}

// settle replaces the hold with the actual cost. A settlement the store
// cannot take goes to the journal and is replayed when the store returns;
// only if the journal fails too is spend lost, and that is logged loudly.
// The ledger lines go on a copy of the reservation: the keep-alive timer
// may still be reading c.res (Timer.Stop does not wait for a running
// callback).
func (h *Handler) settle(c *call, actual money.Nanos, lines []budget.LedgerLine) {
	ctx := context.Background()
	if !c.res.InMemory() {
		// A draw settles in memory and never waits: a timeout would only
		// arm and stop a timer per request.
		var cancel context.CancelFunc
		ctx, cancel = settleContext()
		defer cancel()
	}
	res := c.res
	res.Ledger = lines
	err := h.o.Budget.Settle(ctx, res, actual)
	if err == nil {
		return
	}
	if jerr := h.o.Journal.Append(res, actual); jerr != nil {
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

// settleContext is detached from the request: a settlement must complete
// even though the client that caused it has gone.
func settleContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), settleTimeout)
}

func logReadErr(err error) zap.Field {
	if err == nil {
		return zap.Skip()
	}
	return zap.NamedError("body_error", err)
}
