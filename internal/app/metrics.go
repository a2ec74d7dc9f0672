package app

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clade-gateway/clade-gateway/internal/budgetgauge"
	"github.com/clade-gateway/clade-gateway/internal/proxy"
)

// keyAgeCollector exports the age of each workspace key, read from the
// policy at scrape time so it follows reloads (rotation alerts). Budget
// limits and alert thresholds are the budget gauges' (budgetGauges).
type keyAgeCollector struct {
	state  func() *proxy.State
	now    func() time.Time
	keyAge *prometheus.Desc
}

func newKeyAgeCollector(state func() *proxy.State, now func() time.Time) *keyAgeCollector {
	return &keyAgeCollector{
		state: state, now: now,
		keyAge: prometheus.NewDesc("clade_gateway_upstream_key_age_days",
			"Age in days of each workspace key that has a created date in the policy. Bounded by the policy's keys.", []string{"workspace", "key"}, nil),
	}
}

func (c *keyAgeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.keyAge }

func (c *keyAgeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.state()
	if s == nil {
		return
	}
	now := c.now()
	for _, ws := range s.Policy.Workspaces {
		for _, k := range ws.Keys {
			if k.Created.IsZero() {
				continue
			}
			ch <- prometheus.MustNewConstMetric(c.keyAge, prometheus.GaugeValue, now.Sub(k.Created).Hours()/24, ws.Name, k.Name)
		}
	}
}

// budgetGauges exports the level of every budget of the current policy,
// read from st at each scrape.
func budgetGauges(st budgetgauge.Store, state func() *proxy.State, timeout time.Duration) *budgetgauge.Collector {
	return budgetgauge.New(st, func() budgetgauge.Budgets {
		// A nil *policy.Policy in the interface would not read as no
		// policy.
		if s := state(); s != nil && s.Policy != nil {
			return s.Policy
		}
		return nil
	}, timeout)
}
