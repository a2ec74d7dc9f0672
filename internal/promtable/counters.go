package promtable

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// MaxLabels is the most labels a Counters family may have: its series are
// found by an array of label values, which costs no allocation per Add.
const MaxLabels = 4

// Counters is a counter family whose series are created by Add, like a
// prometheus.CounterVec, kept sorted for the scrape. It is a Table.
type Counters struct {
	name, help string
	schema     Schema
	desc       *prometheus.Desc
	now        func() time.Time

	mu     sync.RWMutex
	rows   map[[MaxLabels]string]*counterRow
	sorted []*counterRow // nil when a series was added since the last sort
}

type counterRow struct {
	values  [MaxLabels]string
	labels  Labels
	created *timestamppb.Timestamp
	bits    atomic.Uint64 // float64 value
}

// NewCounters returns an empty counter family labelled by labels; now
// stamps each series' creation (time.Now when nil).
func NewCounters(name, help string, labels []string, now func() time.Time) *Counters {
	if len(labels) > MaxLabels || !validName(name, true) {
		panic(fmt.Sprintf("promtable: %s: invalid name or %d labels (at most %d)", name, len(labels), MaxLabels))
	}
	if now == nil {
		now = time.Now
	}
	return &Counters{
		name: name, help: help, schema: NewSchema(labels...), now: now,
		desc: prometheus.NewDesc(name, help, labels, nil),
		rows: make(map[[MaxLabels]string]*counterRow),
	}
}

// Add adds v (not negative) to the series with these label values (in the
// order of the names given to NewCounters), creating it at zero first.
func (c *Counters) Add(v float64, values ...string) {
	if v < 0 {
		panic(fmt.Sprintf("promtable: %s: counter cannot decrease", c.name))
	}
	c.Counter(values...).Add(v)
}

// Counter is one series of a Counters family, for a caller that adds to
// the same series again and again: found once, it is added to without a
// lookup. The zero Counter is none; Found says which.
type Counter struct {
	family *Counters
	r      *counterRow
}

// Counter returns the series with these label values (in the order of the
// names given to NewCounters), creating it at zero first.
func (c *Counters) Counter(values ...string) Counter {
	if len(values) != len(c.schema.names) {
		panic(fmt.Sprintf("promtable: %s: %d label values for %d labels", c.name, len(values), len(c.schema.names)))
	}
	var key [MaxLabels]string
	copy(key[:], values)
	c.mu.RLock()
	r := c.rows[key]
	c.mu.RUnlock()
	if r == nil {
		r = c.create(key)
	}
	return Counter{family: c, r: r}
}

// Found reports whether s is a series (not the zero Counter).
func (s Counter) Found() bool { return s.r != nil }

// Add adds v (not negative) to the series.
func (s Counter) Add(v float64) {
	if v < 0 {
		panic(fmt.Sprintf("promtable: %s: counter cannot decrease", s.family.name))
	}
	for {
		old := s.r.bits.Load()
		if s.r.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (c *Counters) create(key [MaxLabels]string) *counterRow {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.rows[key]; r != nil {
		return r
	}
	r := &counterRow{values: key, created: timestamppb.New(c.now())}
	r.labels = c.schema.Labels(r.values[:len(c.schema.names)])[0]
	c.rows[key] = r
	c.sorted = nil
	return r
}

// series returns the rows sorted as a registry sorts series, sorting them
// only when one was added since the last call.
func (c *Counters) series() []*counterRow {
	c.mu.RLock()
	s, n := c.sorted, len(c.rows)
	c.mu.RUnlock()
	if s != nil || n == 0 {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sorted == nil {
		s := make([]*counterRow, 0, len(c.rows))
		for _, r := range c.rows {
			s = append(s, r)
		}
		slices.SortFunc(s, func(a, b *counterRow) int { return c.schema.Compare(a.values[:], b.values[:]) })
		c.sorted = s
	}
	return c.sorted
}

// Families implements Table.
func (c *Counters) Families() ([]Family, error) {
	rows := c.series()
	if len(rows) == 0 {
		return nil, nil
	}
	ss := make([]Series, len(rows))
	for i, r := range rows {
		ss[i] = Series{Labels: r.labels, Value: math.Float64frombits(r.bits.Load()), Created: r.created}
	}
	return []Family{{Name: c.name, Help: c.help, Type: dto.MetricType_COUNTER, Series: ss}}, nil
}

// Describe implements prometheus.Collector.
func (c *Counters) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *Counters) Collect(ch chan<- prometheus.Metric) {
	fs, _ := c.Families()
	Collect(ch, map[string]*prometheus.Desc{c.name: c.desc}, fs)
}

// Value returns the value of the series with these label values (0 when it
// does not exist), for tests.
func (c *Counters) Value(values ...string) float64 {
	var key [MaxLabels]string
	copy(key[:], values)
	c.mu.RLock()
	defer c.mu.RUnlock()
	if r := c.rows[key]; r != nil {
		return math.Float64frombits(r.bits.Load())
	}
	return 0
}
