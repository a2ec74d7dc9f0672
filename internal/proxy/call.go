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
// to settlement. ServeHTTP creates it; once the request is admitted it
// travels in the request context, where the ReverseProxy hooks find it
// (callFrom). The stages run in this order, one at a time, so the fields
// need no lock; only the keep-alive timer runs beside them (finished):
//
//  1. admit (admit.go), in ServeHTTP before anything is forwarded: the
//     service, key, route, body and parsed request, and for a metered
//     route the hold (reserve: at, budgets, estimate, res, metered), whose
//     keep-alive starts. A refusal ends the request here (reject): no hook
//     runs and finish never does.
//  2. rewrite (forward.go), ReverseProxy's Rewrite: the upstream request
//     (forwarded, inHost, inTLS).
//  3. modifyResponse (tee.go), ReverseProxy's ModifyResponse, when the
//     upstream's headers arrive: status, upstreamID, stream, and the body
//     wrapped in a tailBody that will call finish with the outcome. Or
//     instead upstreamError (forward.go), ReverseProxy's ErrorHandler,
//     when no response came, or when modifyResponse returned an error
//     (which it does only before wrapping the body, so finish runs once):
//     it answers, calls finish with outcomeFailed, and step 4 is moot.
//  4. body close: ReverseProxy closes the response body on every path (at
//     EOF, on a read or write error, when the client is gone, and before
//     its panic(http.ErrAbortHandler)); tailBody.Close reports once.
//  5. finish (settle.go), once: stops the keep-alive, charges the outcome
//     (charge.go), records and settles. Only the settlement reads the call
//     afterwards.
type call struct {
	// Set by ServeHTTP and admit.
	id          string
	w           http.ResponseWriter // the client's: modifyResponse flushes a JSON answer before finish
	start       time.Time
	state       *State
	svc         *policy.Service
	service     string // label: service name, or "unknown" before auth
	key         string // workspace key; only ever written to the upstream x-api-key
	route       route
	body        []byte
	req         parsedRequest
	model       string
	modelLabel  string
	batchCreate bool // a batch creation: its hold lives until the results are metered

	// principals the request is counted under, and their budgets, which
	// are reserved after the service's, team's and workspace's.
	principals       []principalValue
	principalBudgets []budget.Budget

	// The hold, set by reserve and, under fit_max_tokens, fit.go.
	at        time.Time // admission time: windows and prices are taken at it
	budgets   []budget.Budget
	estimate  money.Nanos
	res       budget.Reservation
	metered   bool // a settlement is owed (reserved, or journaled in allow mode)
	split     pricing.Split
	hasSplit  bool
	fit       budget.Fit // how the hold may be fitted (zero: it may not)
	fitted    int64      // max_tokens forwarded when lowered to fit, else 0
	counted   bool       // count_tokens was asked (once per request)
	keepAlive *time.Timer
	finished  atomic.Bool // set by finish; stops the keep-alive from re-arming

	// Set by the ReverseProxy hooks.
	forwarded   time.Time
	overheadPre time.Duration
	inHost      string // Host the client used (batch results_url default)
	inTLS       bool
	headersAt   time.Time
	status      int
	upstreamID  string
	stream      bool
}

// startKeepAlive renews the hold while the response is still running, so
// a long stream is not orphan-charged. A timer, not a goroutine: most
// requests end before it ever fires. A draw on an admission grant needs
// none: the grant's lease is renewed with it.
func (c *call) startKeepAlive(h *Handler, ttl time.Duration) {
	every := ttl / 3
	if every <= 0 || c.res.Renewed() {
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
	// Room for the request line's own fields, so building it is one
	// allocation instead of four growths.
	f := make([]zap.Field, 0, 16)
	f = append(f, zap.String("request_id", c.id), zap.String("service", c.service))
	if c.svc != nil {
		f = append(f, zap.String("team", c.svc.Team.Name), zap.String("workspace", c.svc.Workspace.Name))
	}
	if c.model != "" {
		f = append(f, zap.String("model", safePath(c.model)))
	}
	return f
}

type ctxKey struct{}

func callFrom(ctx context.Context) *call { c, _ := ctx.Value(ctxKey{}).(*call); return c }
