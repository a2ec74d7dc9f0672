package budget

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// storeMetrics are what either store reports about itself. Budget levels
// (limit, spent, reserved) come from NewCollector instead, read at scrape
// time so every replica exports the same values.
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
			Help:    "Time taken by budget store operations, including failures.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_store_errors_total",
			Help: "Budget store operations that failed (unreachable, timed out, or lost data); refusals are not errors.",
		}, []string{"op"}),
		orphans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clade_gateway_orphaned_holds_total",
			Help: "Holds whose lease ended before settlement and were charged their estimate.",
		}),
		overshoot: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_budget_overshoot_usd_total",
			Help: "USD by which settlements took an enforced budget's spend plus holds beyond its limit.",
		}, []string{"scope"}),
		inFlight: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "clade_gateway_holds_in_flight",
			Help: "Live holds this replica placed and has not settled.",
		}, inFlight),
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

// observe records one operation. Refusals are outcomes, not errors.
func (m *storeMetrics) observe(op string, start time.Time, err error) {
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, ErrOverBudget) && !errors.Is(err, ErrInvalid) {
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

// budgetCollector exports budget levels read from the store at scrape time.
type budgetCollector struct {
	store   Store
	budgets func() []Budget
	timeout time.Duration

	limit, spent, reserved, scrapeErrors *prometheus.Desc
	errCount                             atomic.Uint64
}

// NewCollector returns a collector that, at each scrape, reads the current
// window of every budget from s and exports its limit, spend and live holds
// in USD. Reading the shared store (not per-replica caches) is what makes
// every replica export the same numbers. When the store cannot be read it
// exports only the limits and counts a scrape error, rather than numbers
// that look like zero spend.
func NewCollector(s Store, budgets func() []Budget, timeout time.Duration) prometheus.Collector {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	labels := []string{"scope", "name", "id", "period"}
	return &budgetCollector{
		store:   s,
		budgets: budgets,
		timeout: timeout,
		limit: prometheus.NewDesc("clade_gateway_budget_limit_usd",
			"Budget limit in USD.", labels, nil),
		spent: prometheus.NewDesc("clade_gateway_budget_spent_usd",
			"Spend committed in the budget's current window, in USD.", labels, nil),
		reserved: prometheus.NewDesc("clade_gateway_budget_reserved_usd",
			"Live holds against the budget's current window, in USD.", labels, nil),
		scrapeErrors: prometheus.NewDesc("clade_gateway_budget_scrape_errors_total",
			"Scrapes that could not read budget levels from the store.", nil, nil),
	}
}

func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.limit
	ch <- c.spent
	ch <- c.reserved
	ch <- c.scrapeErrors
}

func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	// A budget shared by several services appears once per service; a
	// registry rejects duplicate series, so keep the first.
	var bs []Budget
	seen := make(map[[4]string]bool)
	for _, b := range c.budgets() {
		l := [4]string{string(b.Scope), b.Name, b.ID, string(b.Period)}
		if !seen[l] {
			seen[l] = true
			bs = append(bs, b)
		}
	}
	// The registry sorts every family's series by label values (in label
	// name order: id, name, period, scope) at each scrape. Sent in that
	// order, thousands of budgets cost it one pass instead of a sort.
	slices.SortFunc(bs, func(a, b Budget) int {
		return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.Name, b.Name),
			strings.Compare(string(a.Period), string(b.Period)), strings.Compare(string(a.Scope), string(b.Scope)))
	})
	for _, b := range bs {
		ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, b.Limit.Float(),
			string(b.Scope), b.Name, b.ID, string(b.Period))
	}
	if len(bs) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		st, err := c.status(ctx, bs)
		cancel()
		if err != nil {
			c.errCount.Add(1)
		} else {
			for _, s := range st {
				b := s.Budget
				lv := []string{string(b.Scope), b.Name, b.ID, string(b.Period)}
				ch <- prometheus.MustNewConstMetric(c.spent, prometheus.GaugeValue, s.Spent.Float(), lv...)
				ch <- prometheus.MustNewConstMetric(c.reserved, prometheus.GaugeValue, s.Reserved.Float(), lv...)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.scrapeErrors, prometheus.CounterValue, float64(c.errCount.Load()))
}

// statusChunk bounds how many budgets one store read covers. A Redis
// script holds up every other client while it runs; with thousands of
// budgets one read of all of them would hold admissions up for as long,
// at every scrape of every replica. In chunks, an admission waits for one
// chunk at most.
const statusChunk = 500

// status reads every budget's level, or fails whole: gauges from some
// budgets and not others would read as budgets without spend.
func (c *budgetCollector) status(ctx context.Context, bs []Budget) ([]Status, error) {
	out := make([]Status, 0, len(bs))
	for chunk := range slices.Chunk(bs, statusChunk) {
		st, err := c.store.Status(ctx, chunk)
		if err != nil {
			return nil, err
		}
		out = append(out, st...)
	}
	return out, nil
}
