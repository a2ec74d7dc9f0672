package budgetstore

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// storeMetrics are what either store reports about itself. Budget levels
// (limit, spent, reserved) are exported by internal/budgetgauge, which
// reads them through Status at scrape time.
type storeMetrics struct {
	duration  *prometheus.HistogramVec
	errors    *prometheus.CounterVec
	orphans   prometheus.Counter
	overshoot *prometheus.CounterVec
	inFlight  prometheus.GaugeFunc
}

func newStoreMetrics(reg prometheus.Registerer, inFlight func() float64) (*storeMetrics, error) {
	m := &storeMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "clade_gateway_store_duration_seconds",
			Help:    "Time taken by budget store operations, including failures. Bounded by the store operations.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_store_errors_total",
			Help: "Budget store operations that failed (unreachable, timed out, or lost data); refusals are not errors. Bounded by the store operations, each exported from the start.",
		}, []string{"op"}),
		orphans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clade_gateway_orphaned_holds_total",
			Help: "Holds whose lease ended before settlement and were charged their estimate. No labels.",
		}),
		overshoot: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_budget_overshoot_usd_total",
			Help: "USD by which settlements took an enforced budget's spend plus holds beyond its limit. Bounded by the 4 budget scopes, each exported from the start.",
		}, []string{"scope"}),
		inFlight: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "clade_gateway_holds_in_flight",
			Help: "Live holds this replica placed and has not settled. No labels.",
		}, inFlight),
	}
	// Series of a known, small label set start at zero, so that rate()
	// and absence alerts work before the first error or overshoot.
	for _, op := range storeOps() {
		m.errors.WithLabelValues(op)
	}
	for _, sc := range []budget.Scope{budget.ScopeService, budget.ScopeTeam, budget.ScopeWorkspace, budget.ScopePrincipal} {
		m.overshoot.WithLabelValues(string(sc))
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.duration, m.errors, m.orphans, m.overshoot, m.inFlight} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("budget: register store metrics: %w", err)
		}
	}
	return m, nil
}

// storeOps are the operations the stores observe (the op label).
func storeOps() []string {
	return []string{"adjust", "extend", "grant", "lock", "notify", "owners", "ping", "record", "reinit", "reserve", "settle", "status"}
}

// observe records one operation. Refusals are outcomes, not errors.
func (m *storeMetrics) observe(op string, start time.Time, err error) {
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, budget.ErrOverBudget) && !errors.Is(err, budget.ErrInvalid) {
		m.errors.WithLabelValues(op).Inc()
	}
}

func (m *storeMetrics) orphaned(n int64) {
	if n > 0 {
		m.orphans.Add(float64(n))
	}
}

// settleEffect is what one settlement did to one budget window, in the
// store's own before/after terms (spent plus live holds).
type settleEffect struct {
	before, after money.Nanos
	limit         money.Nanos
	enforced      bool
	scope         string
}

// overshootOf returns how far this settlement pushed the window beyond its
// limit: the part of the increase above max(limit, before).
func (e settleEffect) overshootOf() money.Nanos {
	if !e.enforced || e.after <= e.limit {
		return 0
	}
	floor := max(e.limit, e.before)
	if e.after <= floor {
		return 0
	}
	return e.after - floor
}

func (m *storeMetrics) settled(effects []settleEffect) {
	for _, e := range effects {
		if o := e.overshootOf(); o > 0 {
			m.overshoot.WithLabelValues(e.scope).Add(o.Float())
		}
	}
}

// inFlight tracks this replica's unsettled holds and their lease ends, so
// the gauge drops a hold whose lease ran out even if it is never settled.
type inFlight struct {
	clock func() time.Time
	mu    sync.Mutex
	holds map[string]time.Time
}

func newInFlight(clock func() time.Time) *inFlight {
	return &inFlight{clock: clock, holds: make(map[string]time.Time)}
}

func (f *inFlight) add(id string, expiry time.Time) {
	f.mu.Lock()
	f.holds[id] = expiry
	f.mu.Unlock()
}

func (f *inFlight) extend(id string, expiry time.Time) {
	f.mu.Lock()
	if _, ok := f.holds[id]; ok {
		f.holds[id] = expiry
	}
	f.mu.Unlock()
}

func (f *inFlight) remove(id string) {
	f.mu.Lock()
	delete(f.holds, id)
	f.mu.Unlock()
}

// count forgets expired holds and returns how many remain.
func (f *inFlight) count() float64 {
	now := f.clock()
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, exp := range f.holds {
		if !exp.After(now) {
			delete(f.holds, id)
		}
	}
	return float64(len(f.holds))
}
