package proxy

import (
	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// outcome is how a forwarded request ended, as finish is told it. Each way
// is its own type with its own charging rule (charged), and the methods are
// unexported: the set of outcomes is closed to this package, and one
// without a rule does not compile.
type outcome interface {
	// charged is what the request costs by this outcome's rule.
	charged(h *Handler, c *call) charge
	// bodyErr is why the response body ended, when not at its end.
	bodyErr() error
}

type (
	// outcomeUnsettled: nothing is settled when the response ends. The
	// route spends nothing, or a batch was created, whose hold lives
	// until its results are metered (internal/batch).
	outcomeUnsettled struct{}
	outcomeRefused   struct{} // upstream answered non-2xx: not billed
	outcomeJSON      struct {
		usage meter.Usage
		valid meter.Validity
		ok    bool // the body carried a usage object
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
		dial bool // the connection was never made: nothing reached the API
	}
)

// The causes of a charge by estimate rather than reported usage: the
// cause label of clade_gateway_estimated_charges_total, each exported at
// zero from the start (estimateCauses).
const (
	causeJSONWithoutUsage = "json_without_usage"
	causeUnseenOutput     = "interrupted_stream_unseen_output"
	causeInterrupted      = "interrupted_stream"
	causeNoStart          = "stream_without_start"
	causeUpstreamFailed   = "upstream_failed"
	causeUnpriced         = "unpriced_usage"
	causeImpossible       = "impossible_usage"
	causeUnpricedTier     = "unpriced_tier"
)

func estimateCauses() []string {
	return []string{causeJSONWithoutUsage, causeUnseenOutput, causeInterrupted, causeNoStart,
		causeUpstreamFailed, causeUnpriced, causeImpossible, causeUnpricedTier}
}

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
func (h *Handler) chargeFor(c *call, o outcome) charge { return o.charged(h, c) }

func (outcomeUnsettled) charged(*Handler, *call) charge { return charge{} }

func (outcomeRefused) charged(*Handler, *call) charge { return charge{} }

func (o outcomeJSON) charged(h *Handler, c *call) charge {
	if !o.ok {
		return h.estimateCharge(c, causeJSONWithoutUsage)
	}
	if why := h.impossibleUsage(c, o.usage, o.valid); why != "" {
		return h.impossibleCharge(c, why, o.usage, o.valid)
	}
	return h.price(c, o.usage, "")
}

func (o outcomeStream) charged(h *Handler, c *call) charge {
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
		return h.estimateCharge(c, causeUnseenOutput)
	case o.res.SawStart:
		if why := h.impossibleStart(c, o.res.Usage, o.valid); why != "" {
			return h.impossibleCharge(c, why, o.res.Usage, o.valid)
		}
		return h.price(c, meter.EstimateInterrupted(o.res, c.req.MaxTokens), causeInterrupted)
	}
	return h.estimateCharge(c, causeNoStart)
}

func (o outcomeFailed) charged(h *Handler, c *call) charge {
	if o.dial {
		return charge{}
	}
	return h.estimateCharge(c, causeUpstreamFailed)
}

func (outcomeUnsettled) bodyErr() error { return nil }
func (outcomeRefused) bodyErr() error   { return nil }
func (o outcomeJSON) bodyErr() error    { return o.err }
func (o outcomeStream) bodyErr() error  { return o.err }
func (o outcomeFailed) bodyErr() error  { return o.err }

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
		return h.estimateCharge(c, causeUnpriced)
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
