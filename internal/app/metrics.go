package app

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clade-gateway/clade-gateway/internal/proxy"
)

// policyCollector exports what the policy itself says, read at scrape time
// so it follows reloads: key ages (rotation alerts) and alert thresholds
// (budget alert rules).
type policyCollector struct {
	state     func() *proxy.State
	now       func() time.Time
	keyAge    *prometheus.Desc
	threshold *prometheus.Desc
}

func newPolicyCollector(state func() *proxy.State, now func() time.Time) *policyCollector {
	return &policyCollector{
		state: state, now: now,
		keyAge: prometheus.NewDesc("clade_gateway_upstream_key_age_days",
			"Age in days of each workspace key that has a created date in the policy.", []string{"workspace", "key"}, nil),
		threshold: prometheus.NewDesc("clade_gateway_budget_alert_threshold",
			"The lowest alert_at fraction of each budget that has one.", []string{"scope", "name", "id", "period"}, nil),
	}
}

func (c *policyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.keyAge; ch <- c.threshold }

func (c *policyCollector) Collect(ch chan<- prometheus.Metric) {
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
	for _, b := range s.Policy.AllBudgets() {
		if len(b.AlertAt) == 0 {
			continue
		}
		low := b.AlertAt[0]
		for _, a := range b.AlertAt {
			low = min(low, a)
		}
		ch <- prometheus.MustNewConstMetric(c.threshold, prometheus.GaugeValue, low, string(b.Scope), b.Name, b.ID, string(b.Period))
	}
}
