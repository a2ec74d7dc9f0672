// Package proxy is the gateway's HTTP edge: it authenticates a service by
// its token, admits the request against the service's budgets, forwards it
// to Anthropic with the workspace key, meters the response as it streams
// back, and settles the actual cost.
//
// A request meets the files in this order: handler.go (ServeHTTP),
// admit.go, forward.go (rewrite), tee.go (modifyResponse, tailBody),
// settle.go (finish) with charge.go (the charging rules). call.go declares
// the state they share and the order ReverseProxy runs its hooks in.
package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
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

// Budgeter reserves and settles spend; *redisstore.Store and
// *boltstore.Store implement it.
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
	Upstream  *url.URL
	PublicURL *url.URL // where clients reach the gateway (batch results_url)
	State     func() *State
	Budget    Budgeter
	Journal   Journal
	Batches   BatchTracker // nil: batch paths are refused
	Files     FileOwners   // nil: file paths are refused
	Logger    *zap.Logger
	// RequestLog, when set, takes the request log's lines, built by hand
	// as Logger's production JSON encoder would write them; it must be the
	// destination of Logger (unnamed), with info lines on. nil: they go
	// through Logger.
	RequestLog   io.Writer
	SpendLog     io.Writer       // the spend log, when Spend is nil (nil: none)
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
	lines   sync.Pool      // *[]byte: request lines being built
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
		o.Spend = spend.New(o.Registerer, o.SpendLog, o.Clock)
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

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{id: newRequestID(), start: h.o.Clock(), state: h.o.State(), service: "unknown", modelLabel: "other", w: w}
	if err := h.admit(w, r, c); err != nil {
		h.release(c)
		h.reject(w, c, err)
		return
	}
	ctx := context.WithValue(r.Context(), ctxKey{}, c)
	h.rp.ServeHTTP(w, r.WithContext(ctx))
}

// release gives back a hold placed by an admission that then failed:
// nothing was forwarded, so nothing is owed, and the keep-alive must not
// renew the hold until its lease.
func (h *Handler) release(c *call) {
	if !c.metered {
		return
	}
	c.finished.Store(true)
	if c.keepAlive != nil {
		c.keepAlive.Stop()
	}
	h.settle(c, 0, nil)
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
