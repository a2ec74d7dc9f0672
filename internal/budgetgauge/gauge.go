// Package budgetgauge exports every budget of the policy as gauges: its
// limit and lowest alert threshold from the policy, its spend and live
// holds read from the budget store at scrape time, so that every replica
// exports the same numbers.
package budgetgauge

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/promtable"
)

// The families, each labelled by scope, name, id and period and bounded by
// the policy's budgets (the scrape error counter has no labels).
const (
	limitName     = "clade_gateway_budget_limit_usd"
	spentName     = "clade_gateway_budget_spent_usd"
	reservedName  = "clade_gateway_budget_reserved_usd"
	thresholdName = "clade_gateway_budget_alert_threshold"
	errorsName    = "clade_gateway_budget_scrape_errors_total"

	limitHelp     = "Budget limit in USD. Bounded by the policy's budgets."
	spentHelp     = "Spend committed in the budget's current window, in USD. Bounded by the policy's budgets."
	reservedHelp  = "Live holds against the budget's current window, in USD. Bounded by the policy's budgets."
	thresholdHelp = "The lowest alert_at fraction of each budget that has one. Bounded by the policy's budgets."
	errorsHelp    = "Scrapes that could not read budget levels from the store. No labels."
)

// statusChunk bounds how many budgets one store read covers. A Redis
// script holds up every other client while it runs; with thousands of
// budgets one read of all of them would hold admissions up for as long,
// at every scrape of every replica. In chunks, an admission waits for one
// chunk at most.
const statusChunk = 500

// Store reads budget levels.
type Store interface {
	Status(ctx context.Context, budgets []budget.Budget) ([]budget.Status, error)
}

// Budgets is a set of budgets that does not change (a loaded policy); a
// new set is a new value. Its dynamic type must be comparable (a pointer):
// the collector rebuilds its labels when the value changes.
type Budgets interface {
	AllBudgets() []budget.Budget
}

// Collector exports the budget gauges. It is a promtable.Table: gathered
// by a promtable.Registry, a scrape costs one store read per 500 budgets
// and a few allocations per family; the label pairs are built once per
// policy (re)load.
type Collector struct {
	store   Store
	budgets func() Budgets
	timeout time.Duration
	descs   map[string]*prometheus.Desc

	mu  sync.Mutex
	tab *table // of the policy last seen

	errCount atomic.Uint64
}

var _ promtable.Table = (*Collector)(nil)

// defaultTimeout is the stores' default operation timeout: a scrape reads
// the levels as any store call would.
const defaultTimeout = 500 * time.Millisecond

// New returns a collector of the budgets that budgets returns (nil while
// there is no policy), reading their levels from s within timeout
// (defaultTimeout when not positive). When the store cannot be read
// it exports the limits and thresholds and counts a scrape error, rather
// than levels that would read as zero spend.
func New(s Store, budgets func() Budgets, timeout time.Duration) *Collector {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	labels := schema.Names()
	return &Collector{store: s, budgets: budgets, timeout: timeout, descs: map[string]*prometheus.Desc{
		limitName:     prometheus.NewDesc(limitName, limitHelp, labels, nil),
		spentName:     prometheus.NewDesc(spentName, spentHelp, labels, nil),
		reservedName:  prometheus.NewDesc(reservedName, reservedHelp, labels, nil),
		thresholdName: prometheus.NewDesc(thresholdName, thresholdHelp, labels, nil),
		errorsName:    prometheus.NewDesc(errorsName, errorsHelp, nil, nil),
	}}
}

var schema = promtable.NewSchema("scope", "name", "id", "period")

// table is what the gauges take from one set of budgets: its budgets, unique by
// labels and in the order their series are exported, with their label
// pairs, limits and thresholds.
type table struct {
	src        Budgets
	budgets    []budget.Budget
	limits     []promtable.Series
	thresholds []promtable.Series
	labels     []promtable.Labels
}

func newTable(src Budgets) *table {
	t := &table{src: src}
	if src == nil {
		return t
	}
	values := func(b budget.Budget) []string {
		return []string{string(b.Scope), b.Name, b.ID, string(b.Period)}
	}
	bs := src.AllBudgets()
	slices.SortFunc(bs, func(a, b budget.Budget) int { return schema.Compare(values(a), values(b)) })
	// A budget listed twice would be two series with one label set, which
	// a scraper rejects; keep the first.
	bs = slices.CompactFunc(bs, func(a, b budget.Budget) bool { return schema.Compare(values(a), values(b)) == 0 })
	vs := make([][]string, len(bs))
	for i, b := range bs {
		vs[i] = values(b)
	}
	t.budgets, t.labels = bs, schema.Labels(vs...)
	t.limits = make([]promtable.Series, len(bs))
	for i, b := range bs {
		t.limits[i] = promtable.Series{Labels: t.labels[i], Value: b.Limit.Float()}
		if len(b.AlertAt) > 0 {
			t.thresholds = append(t.thresholds, promtable.Series{Labels: t.labels[i], Value: slices.Min(b.AlertAt)})
		}
	}
	return t
}

// current returns the table of the current budgets, built when they
// change.
func (c *Collector) current() *table {
	src := c.budgets()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tab == nil || c.tab.src != src {
		c.tab = newTable(src)
	}
	return c.tab
}

// Families implements promtable.Table.
func (c *Collector) Families() ([]promtable.Family, error) {
	t := c.current()
	var out []promtable.Family
	add := func(name, help string, typ dto.MetricType, ss []promtable.Series) {
		if len(ss) > 0 {
			out = append(out, promtable.Family{Name: name, Help: help, Type: typ, Series: ss})
		}
	}
	add(limitName, limitHelp, dto.MetricType_GAUGE, t.limits)
	add(thresholdName, thresholdHelp, dto.MetricType_GAUGE, t.thresholds)
	if len(t.budgets) > 0 {
		if spent, reserved, err := c.levels(t); err != nil {
			c.errCount.Add(1)
		} else {
			add(spentName, spentHelp, dto.MetricType_GAUGE, spent)
			add(reservedName, reservedHelp, dto.MetricType_GAUGE, reserved)
		}
	}
	add(errorsName, errorsHelp, dto.MetricType_COUNTER, []promtable.Series{{Value: float64(c.errCount.Load())}})
	return out, nil
}

// levels reads every budget's spend and live holds, or fails whole:
// gauges from some budgets and not others would read as budgets without
// spend.
func (c *Collector) levels(t *table) (spent, reserved []promtable.Series, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	spent = make([]promtable.Series, 0, len(t.budgets))
	reserved = make([]promtable.Series, 0, len(t.budgets))
	for chunk := range slices.Chunk(t.budgets, statusChunk) {
		st, err := c.store.Status(ctx, chunk)
		if err != nil {
			return nil, nil, err
		}
		if len(st) != len(chunk) {
			return nil, nil, fmt.Errorf("budgetgauge: the store read %d budgets of %d", len(st), len(chunk))
		}
		for _, s := range st {
			l := t.labels[len(spent)]
			spent = append(spent, promtable.Series{Labels: l, Value: s.Spent.Float()})
			reserved = append(reserved, promtable.Series{Labels: l, Value: s.Reserved.Float()})
		}
	}
	return spent, reserved, nil
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector, for registries that are not a
// promtable.Registry.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	fs, _ := c.Families()
	promtable.Collect(ch, c.descs, fs)
}
