package proxy

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

// activeFor is how long a principal counts as active after its last
// admitted request on this replica.
const activeFor = 5 * time.Minute

// activePrincipals remembers the principals this replica admitted
// recently: how many there are (a gauge per service and source, never per
// value) and which budgets the notifier should look at.
type activePrincipals struct {
	now func() time.Time

	mu     sync.Mutex
	seen   map[string]*activePrincipal // by budget owner name
	pruned time.Time
}

type activePrincipal struct {
	service, from string
	budgets       []budget.Budget
	last          time.Time
}

func newActivePrincipals(now func() time.Time) *activePrincipals {
	return &activePrincipals{now: now, seen: map[string]*activePrincipal{}}
}

// note records c's principals as active now.
func (a *activePrincipals) note(c *call) {
	if len(c.principals) == 0 {
		return
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	i := 0
	for _, p := range c.principals {
		// c.principalBudgets lists each principal's budgets in turn, all
		// with the same owner name.
		j := i
		for j < len(c.principalBudgets) && c.principalBudgets[j].Name == c.principalBudgets[i].Name {
			j++
		}
		name := c.principalBudgets[i].Name
		if e := a.seen[name]; e != nil {
			e.last, e.budgets = now, c.principalBudgets[i:j:j]
		} else {
			a.seen[name] = &activePrincipal{service: c.service, from: p.from, budgets: c.principalBudgets[i:j:j], last: now}
		}
		i = j
	}
	if now.Sub(a.pruned) >= time.Minute {
		a.pruneLocked(now)
	}
}

func (a *activePrincipals) pruneLocked(now time.Time) {
	a.pruned = now
	for k, e := range a.seen {
		if now.Sub(e.last) > activeFor {
			delete(a.seen, k)
		}
	}
}

// AlertBudgets returns the budgets of active principals that have alert_at
// thresholds, for the notifier: a principal's budget notifies only when
// the policy asks for it, so a thousand end users at their caps do not
// page anyone unasked.
func (a *activePrincipals) alertBudgets() []budget.Budget {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pruneLocked(a.now())
	var out []budget.Budget
	for _, e := range a.seen {
		for _, b := range e.budgets {
			if len(b.AlertAt) > 0 {
				out = append(out, b)
			}
		}
	}
	return out
}

// principalMetrics count budget refusals by scope and export how many
// principals are active. Principal values are never labels.
type principalMetrics struct {
	refusals *prometheus.CounterVec
	active   *prometheus.Desc
	a        *activePrincipals
}

func newPrincipalMetrics(reg prometheus.Registerer, a *activePrincipals) *principalMetrics {
	m := &principalMetrics{
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_budget_refusals_total",
			Help: "Requests refused because a budget was exhausted, by service and by the scope of that budget (service, team, workspace, principal).",
		}, []string{"service", "scope"}),
		active: prometheus.NewDesc("clade_gateway_principals_active",
			"Principals (developers, end users, sessions, agents) this replica admitted a request for in the last 5 minutes, by service and source.",
			[]string{"service", "from"}, nil),
		a: a,
	}
	reg.MustRegister(m.refusals, m)
	return m
}

func (m *principalMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.active }

func (m *principalMetrics) Collect(ch chan<- prometheus.Metric) {
	type key struct{ service, from string }
	counts := map[key]int{}
	m.a.mu.Lock()
	m.a.pruneLocked(m.a.now())
	for _, e := range m.a.seen {
		counts[key{e.service, e.from}]++
	}
	m.a.mu.Unlock()
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(m.active, prometheus.GaugeValue, float64(n), k.service, k.from)
	}
}

// refused counts a budget refusal by the scope of the budget that refused.
func (m *principalMetrics) refused(service string, err error) {
	var ex *budget.ExceededError
	if errors.As(err, &ex) {
		m.refusals.WithLabelValues(service, string(ex.Budget.Scope)).Inc()
	}
}
