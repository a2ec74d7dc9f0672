// Package storemetrics is what the budget stores report about themselves:
// call latency and errors by operation, orphaned holds, overshoot by scope,
// and this replica's holds in flight. Every series of a known label set is
// exported at zero from the start.
package storemetrics

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// Metrics are what either store reports about itself. Budget levels
// (limit, spent, reserved) are exported by internal/budgetgauge, which
// reads them through Status at scrape time.
type Metrics struct {
	duration  *prometheus.HistogramVec
	errors    *prometheus.CounterVec
	orphans   prometheus.Counter
	overshoot *prometheus.CounterVec
	inFlight  prometheus.GaugeFunc
	// byOp holds each of Ops' series, resolved once: a grant's draws and
	// settlements are observed on every request, and resolving by label
	// hashes and validates the label each time.
	byOp map[string]opMetrics
}

type opMetrics struct {
	duration prometheus.Observer
	errors   prometheus.Counter
}

// New creates the store metrics, registered with reg unless it is nil;
// inFlight reads the holds-in-flight gauge.
func New(reg prometheus.Registerer, inFlight func() float64) (*Metrics, error) {
	m := &Metrics{
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
	m.byOp = make(map[string]opMetrics, len(Ops()))
	for _, op := range Ops() {
		m.byOp[op] = opMetrics{duration: m.duration.WithLabelValues(op), errors: m.errors.WithLabelValues(op)}
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

// Ops are the operations the stores observe (the op label).
func Ops() []string {
	return []string{"adjust", "extend", "grant", "lock", "notify", "owners", "ping", "record", "reinit", "reserve", "settle", "status"}
}

// Observe records one operation. Refusals are outcomes, not errors.
func (m *Metrics) Observe(op string, start time.Time, err error) {
	om, ok := m.byOp[op]
	if !ok { // not one of Ops: resolved by label, as any op was
		om = opMetrics{duration: m.duration.WithLabelValues(op), errors: m.errors.WithLabelValues(op)}
	}
	om.duration.Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, budget.ErrOverBudget) && !errors.Is(err, budget.ErrInvalid) {
		om.errors.Inc()
	}
}

// Orphaned counts n holds charged at their estimate at their lease end.
func (m *Metrics) Orphaned(n int64) {
	if n > 0 {
		m.orphans.Add(float64(n))
	}
}

// Effect is what one settlement did to one budget window, in the
// store's own before/after terms (spent plus live holds).
type Effect struct {
	Before, After money.Nanos
	Limit         money.Nanos
	Enforced      bool
	Scope         string
}

// Overshoot returns how far this settlement pushed the window beyond its
// limit: the part of the increase above max(limit, before).
func (e Effect) Overshoot() money.Nanos {
	if !e.Enforced || e.After <= e.Limit {
		return 0
	}
	floor := max(e.Limit, e.Before)
	if e.After <= floor {
		return 0
	}
	return e.After - floor
}

// Settled counts the overshoot of a settlement's effects.
func (m *Metrics) Settled(effects []Effect) {
	for _, e := range effects {
		if o := e.Overshoot(); o > 0 {
			m.overshoot.WithLabelValues(e.Scope).Add(o.Float())
		}
	}
}

// InFlight tracks this replica's unsettled holds and their lease ends, so
// the gauge drops a hold whose lease ran out even if it is never settled.
type InFlight struct {
	clock  func() time.Time
	mu     sync.Mutex
	holds  map[string]time.Time
	others map[*func(now time.Time) int]struct{} // see Also
}

// NewInFlight returns an empty set whose leases end on clock.
func NewInFlight(clock func() time.Time) *InFlight {
	return &InFlight{clock: clock, holds: make(map[string]time.Time)}
}

// Add tracks hold id until expiry.
func (f *InFlight) Add(id string, expiry time.Time) {
	f.mu.Lock()
	f.holds[id] = expiry
	f.mu.Unlock()
}

// Extend moves a tracked hold's lease end.
func (f *InFlight) Extend(id string, expiry time.Time) {
	f.mu.Lock()
	if _, ok := f.holds[id]; ok {
		f.holds[id] = expiry
	}
	f.mu.Unlock()
}

// Remove forgets a settled hold.
func (f *InFlight) Remove(id string) {
	f.mu.Lock()
	delete(f.holds, id)
	f.mu.Unlock()
}

// Also adds what count returns to Count, until the returned func is
// called: holds tracked elsewhere, such as the draws on admission grants,
// which would otherwise be tracked twice per request.
func (f *InFlight) Also(count func(now time.Time) int) (stop func()) {
	key := &count
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.others == nil {
		f.others = map[*func(time.Time) int]struct{}{}
	}
	f.others[key] = struct{}{}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.others, key)
	}
}

// Count forgets expired holds and returns how many remain, with what the
// counts added by Also report.
func (f *InFlight) Count() float64 {
	now := f.clock()
	f.mu.Lock()
	for id, exp := range f.holds {
		if !exp.After(now) {
			delete(f.holds, id)
		}
	}
	n := len(f.holds)
	others := make([]func(time.Time) int, 0, len(f.others))
	for c := range f.others {
		others = append(others, *c)
	}
	f.mu.Unlock()
	// Called without the lock: they take their own, which Add and Remove
	// may be called under.
	for _, c := range others {
		n += c(now)
	}
	return float64(n)
}
