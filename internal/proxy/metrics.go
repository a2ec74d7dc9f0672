package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the proxy's request and spend series. Every label value comes
// from a set the policy or the price table defines: service names, model
// IDs the price table knows (else "other"), fixed component and reason
// names. Tokens, keys, request IDs and raw paths are never labels.
type metrics struct {
	requests         *prometheus.CounterVec
	rejected         *prometheus.CounterVec
	upstreamDuration *prometheus.HistogramVec
	ttfb             *prometheus.HistogramVec
	overhead         prometheus.Histogram
	streamsOpen      prometheus.Gauge
	unreserved       *prometheus.CounterVec
	settleFailures   *prometheus.CounterVec
	estimated        *prometheus.CounterVec
	fitted           *prometheus.CounterVec
	waited           *prometheus.CounterVec
	countTokens      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	latency := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	return &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_requests_total",
			Help: "Requests answered, by service, model and HTTP status code.",
		}, []string{"service", "model", "code"}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_rejected_total",
			Help: "Requests the gateway refused, by reason.",
		}, []string{"service", "reason"}),
		upstreamDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "clade_gateway_upstream_duration_seconds",
			Help:    "Time from forwarding a request to the end of the upstream response body.",
			Buckets: latency,
		}, []string{"service", "model"}),
		ttfb: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "clade_gateway_time_to_first_byte_seconds",
			Help:    "Time from forwarding a request to the upstream response headers.",
			Buckets: latency,
		}, []string{"service", "model"}),
		overhead: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "clade_gateway_overhead_seconds",
			Help:    "Time the gateway itself adds to a request: auth, parsing, admission and response handling.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5},
		}),
		streamsOpen: f.NewGauge(prometheus.GaugeOpts{
			Name: "clade_gateway_streams_open",
			Help: "SSE responses being streamed to clients now.",
		}),
		unreserved: f.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_unreserved_forwards_total",
			Help: "Requests forwarded without a reservation because the store was down and on_store_failure is allow.",
		}, []string{"service"}),
		settleFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_settle_failures_total",
			Help: "Settlements that could not reach the store: journaled for replay, or lost if the journal failed too.",
		}, []string{"result"}),
		estimated: f.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_estimated_charges_total",
			Help: "Responses charged by a documented estimate rather than reported usage, by cause.",
		}, []string{"cause"}),
		fitted: f.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_max_tokens_fitted_total",
			Help: "Requests forwarded with max_tokens lowered to fit their budgets (fit_max_tokens).",
		}, []string{"service", "model"}),
		waited: f.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_budget_waits_total",
			Help: "Requests admitted after waiting for requests in flight to give back budget they held (fit_max_tokens).",
		}, []string{"service"}),
		countTokens: f.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_count_tokens_calls_total",
			Help: "count_tokens calls the gateway made to size a prompt exactly near a cap, by result (ok, error, timeout).",
		}, []string{"result"}),
	}
}
