package proxy

import (
	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// Reasons a reported usage is impossible (label values of
// clade_gateway_impossible_usage_total).
const (
	impossibleInvalid   = "invalid_count"       // negative, fractional or not a number
	impossibleMissing   = "missing_count"       // no input_tokens or no output_tokens
	impossibleContext   = "over_context_window" // a prompt longer than the model accepts
	impossibleMaxTokens = "over_max_tokens"     // more output than the request allowed
	impossibleSearches  = "over_max_uses"       // more web searches than the request's tools allow
)

// impossibleUsage reports why a final usage cannot be what the API
// billed, or "". Such a usage is charged neither by its values (it may be
// $0 or absurd) nor dropped: the hold's estimate is charged instead.
//
// Web searches are bounded by the web search tools' max_uses (none
// without a web search tool). The size checks apply per sampling iteration: each prompt within its
// model's context window, each output within the largest max_tokens the
// request set (its own, a fallback's or an advisor's). A usage with no
// iterations is one iteration unless the request can loop server-side,
// in which case only the counts' validity is checked: the loop's length
// has no bound the gateway knows.
func (h *Handler) impossibleUsage(c *call, u meter.Usage, v meter.Validity) string {
	switch {
	case v.Invalid != "":
		return impossibleInvalid
	case !v.InputReported || !v.OutputReported:
		return impossibleMissing
	}
	ctx := func(model string) (int64, bool) {
		if model == "" {
			model = c.model
		}
		cw, ok := c.state.Prices.ContextWindow(model)
		return cw, ok
	}
	if ws := c.req.Bounds.WebSearches; ws >= 0 && u.WebSearchRequests > ws {
		return impossibleSearches
	}
	maxOut := c.req.MaxTokens
	for _, m := range append(c.req.Bounds.Fallbacks, c.req.Bounds.Advisors...) {
		maxOut = max(maxOut, m.MaxTokens)
	}
	if its := u.Iterations(); len(its) > 0 {
		for _, it := range its {
			if cw, ok := ctx(it.Model); ok && it.PromptTokens() > cw {
				return impossibleContext
			}
			if it.Type != "compaction" && it.OutputTokens > maxOut {
				return impossibleMaxTokens
			}
		}
		return ""
	}
	if c.req.ServerTools || len(c.req.Bounds.UnknownTools) > 0 {
		return ""
	}
	if cw, ok := ctx(u.Model); ok && u.PromptTokens() > cw {
		return impossibleContext
	}
	if u.OutputTokens > maxOut {
		return impossibleMaxTokens
	}
	return ""
}

// impossibleStart is impossibleUsage for an interrupted stream, which
// has no final usage: only what message_start (and any message_delta)
// reported is checked, the counts and the prompt.
func (h *Handler) impossibleStart(c *call, u meter.Usage, v meter.Validity) string {
	if v.Invalid != "" {
		return impossibleInvalid
	}
	if c.req.ServerTools || len(c.req.Bounds.UnknownTools) > 0 {
		return ""
	}
	model := u.Model
	if model == "" {
		model = c.model
	}
	if cw, ok := c.state.Prices.ContextWindow(model); ok && u.PromptTokens() > cw {
		return impossibleContext
	}
	return ""
}

// impossibleCharge charges the hold's estimate for an impossible usage,
// and says so loudly: a metric, an alert on it, and an error log with the
// numbers as reported.
func (h *Handler) impossibleCharge(c *call, why string, u meter.Usage, v meter.Validity) charge {
	h.m.impossible.WithLabelValues(why).Inc()
	h.log.Error("impossible usage from the upstream; charging the hold's estimate",
		append(c.logFields(), zap.String("reason", why), zap.String("invalid_field", v.Invalid),
			zap.Int64("input_tokens", u.InputTokens), zap.Int64("cache_creation_input_tokens", u.CacheCreationInputTokens),
			zap.Int64("cache_read_input_tokens", u.CacheReadInputTokens), zap.Int64("output_tokens", u.OutputTokens),
			zap.String("usage_model", safePath(u.Model)), zap.String("estimate_usd", c.estimate.String()))...)
	ch := h.estimateCharge(c, causeImpossible)
	ch.usage = u
	return ch
}

// knownTier reports whether usage service_tier and speed are ones the
// price table has rates for. Priority tier is priced by contract, and a
// value the gateway has never seen may bill anything, so neither is priced
// at standard rates: the charge is the hold's estimate or the standard
// price, whichever is more.
func knownTier(u meter.Usage) bool {
	switch u.ServiceTier {
	case "", "standard", "batch":
	default:
		return false
	}
	switch u.Speed {
	case "", "standard", "fast":
		return true
	}
	return false
}

// unknownTierCharge applies knownTier's rule to a priced usage.
func (h *Handler) unknownTierCharge(c *call, ch charge) charge {
	h.m.estimated.WithLabelValues(causeUnpricedTier).Inc()
	h.log.Warn("usage in a service tier or speed without a price; charging at least the hold's estimate",
		append(c.logFields(), zap.String("service_tier", safePath(ch.usage.ServiceTier)), zap.String("speed", safePath(ch.usage.Speed)))...)
	if ch.cost.Total < c.estimate {
		ch.cost = pricing.Cost{Total: c.estimate, Model: ch.cost.Model}
	}
	ch.cause = causeUnpricedTier
	return ch
}
