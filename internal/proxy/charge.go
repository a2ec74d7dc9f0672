package proxy

import (
	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

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
