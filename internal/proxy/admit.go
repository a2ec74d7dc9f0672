package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// admit authenticates, validates and reserves. On success the request body
// has been read into c.body and, for metered routes, a hold is in place.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, c *call) error {
	if r.Header.Get("Upgrade") != "" || r.Method == http.MethodConnect {
		return errBadRequest("protocol upgrades are not supported by the gateway", nil)
	}
	svc, digest, err := authenticate(r.Header, c.state.Policy)
	if err != nil {
		return err
	}
	c.svc, c.service = svc, svc.Name
	h.tokenUsed(digest)
	if len(svc.Workspace.Keys) == 0 {
		return errors.New("proxy: workspace has no key")
	}
	c.key = string(svc.Workspace.Keys[0].Secret)
	var msg string
	c.route, msg = classify(r.Method, r.URL.Path)
	if !cleanPath(r.URL) {
		// A dot segment or an escaped slash could be normalised upstream
		// into a path the gateway never classified (/v1/models/../complete).
		c.route, msg = routeRefused, "the request path must be in canonical form (no dot segments or escaped separators)"
	}
	if c.route == routeRefused {
		return errPathRefused(msg)
	}
	if c.route == routeBatches && h.o.Batches == nil {
		return errPathRefused("message batches are not enabled on this gateway")
	}
	if c.route == routeFiles && h.o.Files == nil {
		return errPathRefused("the Files API is not enabled on this gateway")
	}
	if err := h.readBody(w, r, c); err != nil {
		return err
	}
	switch c.route {
	case routeMessages:
		return h.admitMessages(r, c)
	case routeCountTokens:
		model, err := parseModel(c.body)
		if err != nil {
			return err
		}
		c.model, c.modelLabel = model, c.state.modelLabel(model)
		if !modelAllowed(svc, model) {
			return errModelNotAllowed(svc.Name, model, svc.Models)
		}
	case routeBatches:
		return h.admitBatch(r, c)
	case routeFiles:
		return h.admitFiles(r, c)
	}
	return nil
}

func (h *Handler) admitMessages(r *http.Request, c *call) error {
	req, err := parseMessages(c.body)
	if err != nil {
		return err
	}
	c.req, c.model, c.modelLabel = req, req.Model, c.state.modelLabel(req.Model)
	if !modelAllowed(c.svc, req.Model) {
		return errModelNotAllowed(c.svc.Name, req.Model, c.svc.Models)
	}
	if err := checkBounds(c.state, c.svc, req.Bounds); err != nil {
		return err
	}
	if err := h.principals(r, c); err != nil {
		return err
	}
	if ok, wait := c.state.allow(c.svc.Name, c.start); !ok {
		return rateLimited(wait)
	}
	at := c.start
	pr := estimateRequest(c.state, req, int64(len(c.body)))
	est, model, err := estimateAll(c.state, req, int64(len(c.body)), false, at)
	if err != nil {
		return errUnknownModel(model, err)
	}
	if c.svc.Fit.Enabled && req.Bounds.SingleModel() {
		if c.split, err = c.state.Prices.EstimateSplit(pr, at); err != nil {
			return errUnknownModel(req.Model, err)
		}
		c.hasSplit = true
		c.fit = fitFor(req, c.split, est, c.svc.Fit.MinMaxTokens)
		if h.nearCap(c.service, est) {
			est = h.exactPrompt(r.Context(), r.Header, c, &pr, est)
		}
	}
	err = h.reserve(r.Context(), c, est, h.o.HoldTTL)
	if err == nil && c.svc.Fit.Enabled {
		h.noteLeft(c.service, c.res)
	}
	if errors.Is(err, budget.ErrOverBudget) {
		return h.overBudget(r.Context(), r.Header, c, pr, est, err)
	}
	if err == nil && c.res.Fitted > 0 {
		return h.applyFit(c)
	}
	return err
}

// reserve places the hold, or applies on_store_failure when the store
// cannot be reached.
func (h *Handler) reserve(ctx context.Context, c *call, est money.Nanos, ttl time.Duration) error {
	c.at, c.estimate, c.budgets = c.start, est, append(c.svc.AllBudgets(), c.principalBudgets...)
	res, err := h.o.Budget.Reserve(ctx, budget.Hold{RequestID: c.id, Budgets: c.budgets, Amount: est, TTL: ttl, Fit: c.fit})
	switch {
	case err == nil:
		c.res, c.metered = res, true
		h.active.note(c)
		c.startKeepAlive(h, ttl)
		return nil
	case errors.Is(err, budget.ErrOverBudget):
		return err
	case (errors.Is(err, budget.ErrUnavailable) || errors.Is(err, budget.ErrStoreReset)) && c.svc.OnStoreFailure == "allow":
		// Fail open, but never unmetered: the settlement goes through the
		// journal with the windows of this moment and is replayed later.
		c.res, c.metered = budget.Reservation{RequestID: c.id, Keys: windowKeys(c.budgets, c.at)}, true
		h.m.unreserved.Inc()
		h.log.Warn("store unavailable; forwarding without a reservation (on_store_failure: allow)",
			zap.String("request_id", c.id), zap.String("service", c.service), zap.Error(err))
		return nil
	case errors.Is(err, budget.ErrUnavailable):
		// The store may have applied the hold after the call gave up.
		// A zero settlement, journaled and replayed when the store is
		// back, releases it instead of letting it expire into an orphan
		// charge for a request that was refused. Even a dial error does
		// not prove nothing was placed: go-redis retries a call whose
		// reply was lost, so the error is the retry's dial failure after
		// an attempt that ran. The journal fsyncs, so it is written off
		// the refusal's path.
		r := budget.Reservation{RequestID: c.id, Keys: windowKeys(c.budgets, c.at)}
		h.pending.Add(1)
		go func() {
			defer h.pending.Done()
			if jerr := h.o.Journal.Append(r, 0); jerr != nil {
				h.log.Error("could not journal the release of a refused request's hold", append(c.logFields(), zap.Error(jerr))...)
			}
		}()
		return fmt.Errorf("proxy: reserve: %w", err)
	default:
		return fmt.Errorf("proxy: reserve: %w", err)
	}
}

func windowKeys(budgets []budget.Budget, at time.Time) []string {
	keys := make([]string, len(budgets))
	for i, b := range budgets {
		keys[i] = b.Key(at)
	}
	return keys
}

func estimateRequest(s *State, r parsedRequest, promptBytes int64) pricing.Request {
	// An unknown tool type reaches here only when the policy allows it;
	// it is priced as a server tool.
	server := r.ServerTools || len(r.Bounds.UnknownTools) > 0
	var allowance money.Nanos
	if server {
		allowance = s.Policy.Estimate.ServerToolAllowance
	}
	return pricing.Request{Model: r.Model, PromptBytes: promptBytes, MaxTokens: r.MaxTokens,
		// Without inference_geo the workspace's default applies, which
		// the gateway cannot see: price it as the dearest, "us".
		InferenceGeoUS: r.GeoUS || r.Bounds.GeoDefault, Fast: r.Fast, ServerTools: server, Allowance: allowance,
		ContextBound: r.Bounds.Pointer != "", ExtraPromptTokens: r.Bounds.ExtraPromptTokens,
		Cache: r.Cache}
}
