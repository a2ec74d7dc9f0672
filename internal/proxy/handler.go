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
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
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
	Logger       *zap.Logger
	SpendLog     *zap.Logger     // used when Spend is nil
	Spend        *spend.Recorder // shared with the batch poller
	Registerer   prometheus.Registerer
	Clock        func() time.Time
	Transport    http.RoundTripper
	HoldTTL      time.Duration // default 60s
	MaxBodyBytes int64         // default 32 MB
	// BatchHoldTTL is how long a batch's admission hold lives (default
	// 25h: batches end within 24h).
	BatchHoldTTL time.Duration
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
	if o.BatchHoldTTL <= 0 {
		o.BatchHoldTTL = 25 * time.Hour
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
		// and goroutine per request for nothing (bench/README.md).
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
	c := &call{id: newRequestID(), start: h.o.Clock(), state: h.o.State(), service: "unknown", modelLabel: "other"}
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
	token, ok := credential(r.Header)
	if !ok {
		return errUnauthenticated()
	}
	svc, ok := c.state.Policy.ServiceByToken(token)
	if !ok {
		return errUnauthenticated()
	}
	c.svc, c.service = svc, svc.Name
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
			return errModelNotAllowed(svc.Name, model)
		}
	case routeBatches:
		return h.admitBatch(r, c)
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
		return errModelNotAllowed(c.svc.Name, req.Model)
	}
	if err := h.principals(r, c); err != nil {
		return err
	}
	if ok, wait := c.state.allow(c.svc.Name, c.start); !ok {
		return rateLimited(wait)
	}
	at := c.start
	est, err := c.state.Prices.Estimate(estimateRequest(c.state, req, int64(len(c.body))), at)
	if err != nil {
		return errUnknownModel(req.Model, err)
	}
	return h.reserve(r.Context(), c, est, h.o.HoldTTL)
}

// reserve places the hold, or applies on_store_failure when the store
// cannot be reached.
func (h *Handler) reserve(ctx context.Context, c *call, est money.Nanos, ttl time.Duration) error {
	c.at, c.estimate, c.budgets = c.start, est, append(c.svc.AllBudgets(), c.principalBudgets...)
	res, err := h.o.Budget.Reserve(ctx, budget.Hold{RequestID: c.id, Budgets: c.budgets, Amount: est, TTL: ttl})
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
		h.m.unreserved.WithLabelValues(c.service).Inc()
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

func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, c *call) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if r.ContentLength > h.o.MaxBodyBytes {
		return &http.MaxBytesError{Limit: h.o.MaxBodyBytes}
	}
	limit := h.o.MaxBodyBytes
	if c.route == routeBatches {
		limit = 256 << 20 // the API's own batch limit
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	// Size the buffer from Content-Length, but not beyond 1 MiB up front:
	// a client's claim alone must not make the gateway allocate 32 MB.
	// One byte more than Content-Length, so that reading the EOF does not
	// grow (copy) a buffer the body filled exactly.
	buf := make([]byte, 0, min(max(r.ContentLength+1, 512), 1<<20))
	for {
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return err
			}
			return errBadRequest("could not read the request body", err)
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
	c.body = buf
	return nil
}

// credential returns the service token from x-api-key or a Bearer
// Authorization header. Several values that disagree are refused: which one
// wins would otherwise depend on header order.
func credential(hd http.Header) (string, bool) {
	var tok string
	for _, v := range hd.Values("X-Api-Key") {
		if tok != "" && v != tok {
			return "", false
		}
		tok = v
	}
	for _, v := range hd.Values("Authorization") {
		b, ok := strings.CutPrefix(v, "Bearer ")
		if !ok || (tok != "" && b != tok) {
			return "", false
		}
		tok = b
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func (h *Handler) reject(w http.ResponseWriter, c *call, err error) {
	e := statusFor(err, h.o.Clock())
	h.m.rejected.WithLabelValues(c.service, e.Reason).Inc()
	h.pm.refused(c.service, err)
	h.m.requests.WithLabelValues(c.service, c.modelLabel, codeLabel(e.Status)).Inc()
	writeError(w, c.id, e)
	lvl := zap.InfoLevel
	if e.Status >= 500 {
		lvl = zap.WarnLevel
	}
	if ce := h.log.Check(lvl, "request refused"); ce != nil {
		fields := c.logFields()
		fields = append(fields, zap.Int("status", e.Status), zap.String("reason", e.Reason))
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
