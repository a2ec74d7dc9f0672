package notify

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts webhook outcomes: one delivery is one (threshold, webhook).
type metrics struct {
	sent    prometheus.Counter // delivered (2xx)
	retried prometheus.Counter // an attempt failed and another follows
	failed  prometheus.Counter // given up: permanent error, attempts spent, or shutdown
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clade_gateway_notifications_total",
		Help: "Budget webhook deliveries by result (sent, retried, failed).",
	}, []string{"result"})
	if err := reg.Register(v); err != nil {
		return nil, err
	}
	// Creating every label value up front makes rate() work from the start.
	return &metrics{
		sent:    v.WithLabelValues("sent"),
		retried: v.WithLabelValues("retried"),
		failed:  v.WithLabelValues("failed"),
	}, nil
}
