// Package proxy is the gateway's HTTP edge: it authenticates a service by
// its token, admits the request against the service's budgets, forwards it
// to Anthropic with the workspace key, meters the response as it streams
// back, and settles the actual cost.
package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/spend"
)

// Budgeter reserves and settles spend; *budget.RedisStore and
// *budget.BoltStore implement it.
type Budgeter interface {
	Reserve(ctx context.Context, h budget.Hold) (budget.Reservation, error)
	Extend(ctx context.Context, r budget.Reservation, ttl time.Duration) error
	Settle(ctx context.Context, r budget.Reservation, actual money.Nanos) error
}

// Journal keeps settlements that could not reach the store, durably, until
// they can be replayed.
type Journal interface {
	Append(r budget.Reservation, actual money.Nanos) error
}

// Options configure a Handler. Upstream, State, Budget and Journal are
// required.
type Options struct {
	Upstream     *url.URL
	PublicURL    *url.URL // where clients reach the gateway (batch results_url)
	State        func() *State
	Budget       Budgeter
	Journal      Journal
	Batches      BatchTracker // nil: batch paths are refused
	Files        FileOwners   // nil: file paths are refused
	Logger       *zap.Logger
	SpendLog     *zap.Logger     // used when Spend is nil
	Spend        *spend.Recorder // shared with the batch poller
	Registerer   prometheus.Registerer
	Clock        func() time.Time
	Transport    http.RoundTripper
	HoldTTL      time.Duration // default 60s
	MaxBodyBytes int64         // default 32 MB
	// MaxBatchBodyBytes limits batch creation bodies (default 256 MB,
	// the API's own batch limit).
	MaxBatchBodyBytes int64
	// BodyReadTimeout bounds the time to receive a whole request body
	// (default 60s); BodyIdleTimeout bounds a pause in it (default 10s).
	BodyReadTimeout time.Duration
	BodyIdleTimeout time.Duration
	// BatchHoldTTL is how long a batch's admission hold lives (default
	// 25h: batches end within 24h).
	BatchHoldTTL time.Duration
	// TokensUsed, when set, records which tokens authenticate (offboarding
	// review of unused tokens).
	TokensUsed TokenUser
	// FitWait is how long a request under fit_max_tokens may wait for
	// requests in flight to give back the budget it lacks (default 30s).
	FitWait time.Duration
	// CountTokensTimeout bounds a count_tokens call made near a cap
	// (default 2s; negative: never call it).
	CountTokensTimeout time.Duration
}

// Handler is the API listener's http.Handler.
type Handler struct {
	o       Options
	rp      *httputil.ReverseProxy
	m       *metrics
	log     *zap.Logger
	active  *activePrincipals
	pm      *principalMetrics
	pending sync.WaitGroup // settlements running after responses ended
	// left is, per service under fit_max_tokens, what its tightest budget
	// had left after its last hold (*atomic.Int64 of nano-USD): a request
	// whose worst case is above it is near the cap.
	left sync.Map
}

// New builds a Handler.
func New(o Options) (*Handler, error) {
	if o.Upstream == nil || o.State == nil || o.Budget == nil || o.Journal == nil {
		return nil, errors.New("proxy: Upstream, State, Budget and Journal are required")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.SpendLog == nil {
		o.SpendLog = zap.NewNop()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Transport == nil {
		o.Transport = NewTransport()
	}
	if o.HoldTTL <= 0 {
		o.HoldTTL = 60 * time.Second
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 32 << 20
	}
	if o.MaxBatchBodyBytes <= 0 {
		o.MaxBatchBodyBytes = 256 << 20
	}
	if o.BodyReadTimeout <= 0 {
		o.BodyReadTimeout = 60 * time.Second
	}
	if o.BodyIdleTimeout <= 0 {
		o.BodyIdleTimeout = 10 * time.Second
	}
	if o.BatchHoldTTL <= 0 {
		o.BatchHoldTTL = 25 * time.Hour
	}
	if o.FitWait <= 0 {
		o.FitWait = 30 * time.Second
	}
	if o.CountTokensTimeout == 0 {
		o.CountTokensTimeout = 2 * time.Second
	}
	if o.Spend == nil {
		o.Spend = spend.New(o.Registerer, o.SpendLog)
	}
	h := &Handler{o: o, m: newMetrics(o.Registerer), log: o.Logger.Named("proxy"), active: newActivePrincipals(o.Clock)}
	h.pm = newPrincipalMetrics(o.Registerer, h.active)
	h.rp = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      o.Transport,
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.upstreamError,
		ErrorLog:       zap.NewStdLog(h.log.Named("reverseproxy")),
		// FlushInterval stays 0: ReverseProxy itself flushes SSE and bodies
		// of unknown length after every write (their interval is -1), so
		// nothing streamed waits in the gateway. Setting -1 for every
		// response also flushed the headers of a JSON answer on their own,
		// from a timer goroutine, before its body: one more write syscall
		// and goroutine per request for nothing (docs/perf-history.md).
		BufferPool: &bufferPool{},
	}
	return h, nil
}

// PrincipalAlertBudgets returns the budgets with alert thresholds of the
// principals this replica admitted recently, for the notifier.
func (h *Handler) PrincipalAlertBudgets() []budget.Budget { return h.active.alertBudgets() }

// Wait blocks until every settlement started by finished responses is done
// (graceful shutdown).
func (h *Handler) Wait() { h.pending.Wait() }

// NewTransport is the upstream transport: proxy environment variables are
// ignored (the upstream is configured, not discovered), connections are
// pooled generously because every request goes to one host.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 1024
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = 10 * time.Minute
	return t
}

type ctxKey struct{}

func callFrom(ctx context.Context) *call { c, _ := ctx.Value(ctxKey{}).(*call); return c }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{id: newRequestID(), start: h.o.Clock(), state: h.o.State(), service: "unknown", modelLabel: "other", w: w}
	if err := h.admit(w, r, c); err != nil {
		h.reject(w, c, err)
		return
	}
	ctx := context.WithValue(r.Context(), ctxKey{}, c)
	h.rp.ServeHTTP(w, r.WithContext(ctx))
}

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

func (h *Handler) reject(w http.ResponseWriter, c *call, err error) {
	e := statusFor(err, h.o.Clock())
	h.m.refused(c, e)
	h.pm.refused(c.service, err)
	writeError(w, c.id, e)
	lvl := zap.InfoLevel
	if e.Status >= 500 {
		lvl = zap.WarnLevel
	}
	if ce := h.log.Check(lvl, "request refused"); ce != nil {
		fields := c.logFields()
		reason := e.Reason
		if e.LogReason != "" {
			reason = e.LogReason
		}
		fields = append(fields, zap.Int("status", e.Status), zap.String("reason", reason))
		if e.Err != nil {
			fields = append(fields, zap.Error(e.Err))
		}
		ce.Write(fields...)
	}
}

// newRequestID returns the gateway's id for a request, echoed as
// request-id on its own errors and as clade-request-id on every response.
func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return "req_clade_" + hex.EncodeToString(b[:])
}
