package proxy

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/clade-gateway/clade-gateway/internal/promtable"
)

// metrics are the proxy's request series. Every label value comes from a
// set the policy or the price table defines: service, team and workspace
// names, model IDs the price table knows (else "other"), fixed route,
// outcome and reason names, HTTP status codes. Tokens, keys, request IDs
// and raw paths are never labels.
//
// A gateway may front thousands of services, so only one family here is
// labelled by service, with one small extra label (outcome). Breakdowns
// that would multiply with services (status codes, refusal reasons,
// latency buckets) are labelled by model and route instead, whose number
// the price table and the gateway bound. Each family's help says what
// bounds it.
type metrics struct {
	requests         *prometheus.CounterVec
	serviceRequests  *promtable.Counters
	rejected         *prometheus.CounterVec
	upstreamDuration *prometheus.HistogramVec
	ttfb             *prometheus.HistogramVec
	overhead         prometheus.Histogram
	streamsOpen      prometheus.Gauge
	unreserved       prometheus.Counter
	settleFailures   *prometheus.CounterVec
	estimated        *prometheus.CounterVec
	impossible       *prometheus.CounterVec
	fitted           *prometheus.CounterVec
	waited           *prometheus.CounterVec
	countTokens      *prometheus.CounterVec

	// The series every answered request updates, resolved once per label
	// set (routeKey → *routeSeries, answerKey → prometheus.Counter):
	// resolving by label hashes and validates every value each time.
	// Model labels are bounded by the price table, routes and status codes
	// by the gateway, so these stay as small as the families.
	routeSeries  sync.Map
	answerSeries sync.Map
}

type routeKey struct {
	model string
	route route
}

type routeSeries struct{ duration, ttfb prometheus.Observer }

type answerKey struct {
	model  string
	status int
}

// forRoute returns the latency series of a model and route.
func (m *metrics) forRoute(model string, r route) *routeSeries {
	k := routeKey{model, r}
	if v, ok := m.routeSeries.Load(k); ok {
		return v.(*routeSeries)
	}
	rs := &routeSeries{
		duration: m.upstreamDuration.WithLabelValues(model, routeName(r)),
		ttfb:     m.ttfb.WithLabelValues(model, routeName(r)),
	}
	v, _ := m.routeSeries.LoadOrStore(k, rs)
	return v.(*routeSeries)
}

// Per-service request outcomes (label values of
// clade_gateway_service_requests_total).
const (
	outcomeLabelOK            = "ok"             // the upstream answered below 400
	outcomeLabelRefused       = "refused"        // the gateway refused it (clade_gateway_rejected_total)
	outcomeLabelUpstreamError = "upstream_error" // the upstream answered 400 or above, failed, or was too slow for the client (499)
)

// latencyBuckets are the classic buckets of the upstream latency
// histograms. Native buckets (factor 1.1: about 10% resolution) are
// exported alongside them to scrapers that negotiate the protobuf format.
var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

func latencyOpts(name, help string) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{
		Name:                            name,
		Help:                            help,
		Buckets:                         latencyBuckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  100,
		NativeHistogramMinResetDuration: time.Hour,
	}
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	// A promtable Table: thousands of services' series are gathered
	// without being collected one by one.
	serviceRequests := promtable.NewCounters("clade_gateway_service_requests_total",
		"Requests answered per service, by outcome (ok, refused, upstream_error). Bounded by services x 3; team and workspace follow from the service.",
		[]string{"service", "team", "workspace", "outcome"}, nil)
	if reg != nil {
		reg.MustRegister(serviceRequests)
	}
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_requests_total",
			Help: "Requests answered, by model and HTTP status code. Bounded by priced models x status codes; per service: clade_gateway_service_requests_total.",
		}, []string{"model", "code"}),
		serviceRequests: serviceRequests,
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_rejected_total",
			Help: "Requests the gateway refused, by reason. Bounded by the fixed set of reasons, each exported from the start; per service: clade_gateway_service_requests_total{outcome=\"refused\"}.",
		}, []string{"reason"}),
		upstreamDuration: f.NewHistogramVec(latencyOpts("clade_gateway_upstream_duration_seconds",
			"Time from forwarding a request to the end of the upstream response body, by model and route. Bounded by priced models x routes."),
			[]string{"model", "route"}),
		ttfb: f.NewHistogramVec(latencyOpts("clade_gateway_time_to_first_byte_seconds",
			"Time from forwarding a request to the upstream response headers, by model and route. Bounded by priced models x routes."),
			[]string{"model", "route"}),
		overhead: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "clade_gateway_overhead_seconds",
			Help:    "Time the gateway itself adds to a request: auth, parsing, admission and response handling. No labels.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5},
		}),
		streamsOpen: f.NewGauge(prometheus.GaugeOpts{
			Name: "clade_gateway_streams_open",
			Help: "SSE responses being streamed to clients now. No labels.",
		}),
		unreserved: f.NewCounter(prometheus.CounterOpts{
			Name: "clade_gateway_unreserved_forwards_total",
			Help: "Requests forwarded without a reservation because the store was down and on_store_failure is allow. No labels; the log names each service.",
		}),
		settleFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_settle_failures_total",
			Help: "Settlements that could not reach the store: journaled for replay, or lost if the journal failed too. Bounded by result (2 values, exported from the start).",
		}, []string{"result"}),
		estimated: f.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_estimated_charges_total",
			Help: "Responses charged by a documented estimate rather than reported usage, by cause. Bounded by the fixed set of 8 causes, exported from the start.",
		}, []string{"cause"}),
		impossible: f.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_impossible_usage_total",
			Help: "Responses whose reported usage cannot be what the API billed (invalid or missing counts, more than the context window or max_tokens allow), charged the hold's estimate instead, by reason. Bounded by 5 reasons, exported from the start.",
		}, []string{"reason"}),
		fitted: f.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_max_tokens_fitted_total",
			Help: "Requests forwarded with max_tokens lowered to fit their budgets (fit_max_tokens). Bounded by services × the models each uses.",
		}, []string{"service", "model"}),
		waited: f.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_budget_waits_total",
			Help: "Requests admitted after waiting for requests in flight to give back budget they held (fit_max_tokens). Bounded by services.",
		}, []string{"service"}),
		countTokens: f.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_count_tokens_calls_total",
			Help: "count_tokens calls the gateway made to size a prompt exactly near a cap, by result (ok, error, timeout). Bounded by 3 results, exported from the start.",
		}, []string{"result"}),
	}
	// Series of a known, small label set start at zero, so that rate()
	// and absence alerts work before the first event.
	for _, r := range []string{reasonBudget, reasonRateLimited, reasonStore, reasonUnauthn, reasonModel, reasonUnknownModel,
		reasonPath, reasonBadRequest, reasonTooLarge, reasonUpstream, reasonUnknownTool, reasonUnbounded} {
		m.rejected.WithLabelValues(r)
	}
	for _, r := range []string{"journaled", "lost"} {
		m.settleFailures.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "error", "timeout"} {
		m.countTokens.WithLabelValues(r)
	}
	for _, r := range []string{impossibleInvalid, impossibleMissing, impossibleContext, impossibleMaxTokens, impossibleSearches} {
		m.impossible.WithLabelValues(r)
	}
	for _, r := range estimateCauses() {
		m.estimated.WithLabelValues(r)
	}
	return m
}

// answered counts one request the gateway has answered, whoever answered
// it: status is what the client got, outcome one of the outcomeLabel
// values.
func (m *metrics) answered(c *call, status int, outcome string) {
	k := answerKey{c.modelLabel, status}
	v, ok := m.answerSeries.Load(k)
	if !ok {
		v, _ = m.answerSeries.LoadOrStore(k, m.requests.WithLabelValues(c.modelLabel, codeLabel(status)))
	}
	v.(prometheus.Counter).Inc()
	team, workspace := c.owner()
	m.serviceRequests.Add(1, c.service, team, workspace, outcome)
}

// refused counts a request the gateway answered itself with an error.
func (m *metrics) refused(c *call, e *apiError) {
	m.rejected.WithLabelValues(e.Reason).Inc()
	outcome := outcomeLabelRefused
	if e.Reason == reasonUpstream {
		outcome = outcomeLabelUpstreamError
	}
	m.answered(c, e.Status, outcome)
}

// upstreamAnswered counts a request the upstream answered.
func (m *metrics) upstreamAnswered(c *call) {
	outcome := outcomeLabelOK
	if c.status >= 400 {
		outcome = outcomeLabelUpstreamError
	}
	m.answered(c, c.status, outcome)
}

// owner returns the team and workspace labels of the call's service ("" for
// a request that named none).
func (c *call) owner() (team, workspace string) {
	if c.svc == nil {
		return "", ""
	}
	if c.svc.Team != nil {
		team = c.svc.Team.Name
	}
	if c.svc.Workspace != nil {
		workspace = c.svc.Workspace.Name
	}
	return team, workspace
}
