package checklist

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports clade_gateway_checklist_items{item,status}: 1 for each
// item's current status, 0 for its other two. The labels are bounded by
// Items() and the three statuses. It evaluates at scrape time, so it follows
// policy reloads and key ages without a timer of its own.
type Collector struct {
	eval    func(ctx context.Context) *Report
	timeout time.Duration
	desc    *prometheus.Desc
}

// NewCollector evaluates with eval, giving the store reads timeout; eval
// returns nil while there is no policy.
func NewCollector(eval func(ctx context.Context) *Report, timeout time.Duration) *Collector {
	return &Collector{eval: eval, timeout: timeout, desc: prometheus.NewDesc("clade_gateway_checklist_items",
		"The access-control checklist: 1 for each item's current status (pass, warn or fail), 0 for the others.",
		[]string{"item", "status"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	r := c.eval(ctx)
	if r == nil {
		return
	}
	for _, it := range r.Items {
		for _, s := range []Status{Pass, Warn, Fail} {
			v := 0.0
			if it.Status == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, it.ID, strings.ToLower(string(s)))
		}
	}
}
