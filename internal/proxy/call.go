package proxy

import (
	"context"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// call is everything the gateway knows about one request, from admission
// to settlement. It travels in the request context.
type call struct {
	id         string
	start      time.Time
	state      *State
	svc        *policy.Service
	service    string // label: service name, or "unknown" before auth
	key        string // workspace key; only ever written to the upstream x-api-key
	route      route
	body       []byte
	req        parsedRequest
	model      string
	modelLabel string

	// principals the request is counted under, and their budgets, which
	// are reserved after the service's, team's and workspace's.
	principals       []principalValue
	principalBudgets []budget.Budget

	at       time.Time // admission time: windows and prices are taken at it
	budgets  []budget.Budget
	estimate money.Nanos
	res      budget.Reservation
	metered  bool // a settlement is owed (reserved, or journaled in allow mode)
	split    pricing.Split
	hasSplit bool
	fit      budget.Fit // how the hold may be fitted (zero: it may not)
	fitted   int64      // max_tokens forwarded when lowered to fit, else 0
	counted  bool       // count_tokens was asked (once per request)

	forwarded   time.Time
	headersAt   time.Time
	status      int
	upstreamID  string
	stream      bool
	keepAlive   *time.Timer
	finished    atomic.Bool // stops the keep-alive from re-arming
	batchCreate bool        // a batch creation: its hold lives until the results are metered
	overheadPre time.Duration
	inHost      string // Host the client used (batch results_url default)
	inTLS       bool
	w           http.ResponseWriter // the client's
}

// startKeepAlive renews the hold while the response is still running, so
// a long stream is not orphan-charged. A timer, not a goroutine: most
// requests end before it ever fires.
func (c *call) startKeepAlive(h *Handler, ttl time.Duration) {
	every := ttl / 3
	if every <= 0 {
		return
	}
	renew := func() {
		if c.finished.Load() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		defer cancel()
		if err := h.o.Budget.Extend(ctx, c.res, ttl); err != nil {
			h.log.Warn("could not extend hold", zap.String("request_id", c.id), zap.Error(err))
		}
		if !c.finished.Load() {
			c.keepAlive.Reset(every)
		}
	}
	// Armed only once assigned, so renew never sees a nil timer.
	c.keepAlive = time.AfterFunc(time.Duration(math.MaxInt64), renew)
	c.keepAlive.Reset(every)
}

func (c *call) logFields() []zap.Field {
	f := []zap.Field{zap.String("request_id", c.id), zap.String("service", c.service)}
	if c.svc != nil {
		f = append(f, zap.String("team", c.svc.Team.Name), zap.String("workspace", c.svc.Workspace.Name))
	}
	if c.model != "" {
		f = append(f, zap.String("model", safePath(c.model)))
	}
	return f
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
