// Package promtable exports large, regular sets of series (thousands of
// services, budgets) at a cost per scrape close to that of writing them
// out.
//
// A prometheus.Registry collects every series through a channel, allocates
// it anew, hashes and checks it, and sorts each family by label values at
// every scrape: at tens of thousands of series that costs more than the
// scrape's encoding. A Table instead keeps its label pairs from one scrape
// to the next, keeps its series sorted, and hands the registry's gatherer
// whole families laid out in a few contiguous allocations. Registry is a
// prometheus.Registry that gathers Tables that way and everything else as
// usual.
package promtable

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Table is a collector that can gather its families itself. The families
// it returns are what its Collect would give a registry, already in the
// form a registry's Gather returns: each family's series unique, their
// labels sorted by name, the series sorted by label values, and no family
// without series. A Table's families must be new at each call (the caller
// may keep them while the next scrape runs).
type Table interface {
	prometheus.Collector
	Families() ([]Family, error)
}

// Registry is a prometheus.Registry that gathers Tables without collecting
// them. A Table registers its descriptors with the registry like any
// collector, so a name clash or an inconsistent help string is refused at
// registration as usual.
type Registry struct {
	*prometheus.Registry
	mu     sync.Mutex
	tables []Table
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{Registry: prometheus.NewRegistry()} }

var (
	_ prometheus.Registerer = (*Registry)(nil)
	_ prometheus.Gatherer   = (*Registry)(nil)
)

// described stands for a Table in the underlying registry: its
// descriptors, no series.
type described struct{ Table }

func (described) Collect(chan<- prometheus.Metric) {}

// Register registers c; a Table is gathered through its Families.
func (r *Registry) Register(c prometheus.Collector) error {
	t, ok := c.(Table)
	if !ok {
		return r.Registry.Register(c)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.Registry.Register(described{t}); err != nil {
		return err
	}
	r.tables = append(r.tables, t)
	return nil
}

// MustRegister registers cs and panics on the first error, as
// prometheus.Registry.MustRegister does.
func (r *Registry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister unregisters c.
func (r *Registry) Unregister(c prometheus.Collector) bool {
	t, ok := c.(Table)
	if !ok {
		return r.Registry.Unregister(c)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.IndexFunc(r.tables, func(x Table) bool { return x == t })
	if i < 0 {
		return false
	}
	r.tables = slices.Delete(r.tables, i, i+1)
	return r.Registry.Unregister(described{t})
}

// Gather gathers the registry's collectors and its Tables, families sorted
// by name. A failing Table withholds its own families only, and its error
// is returned with the rest, as a failing collector's is.
func (r *Registry) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := r.Registry.Gather()
	tables, errs := r.families()
	for _, f := range tables {
		mfs = append(mfs, f.proto())
	}
	slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	for i := 1; i < len(mfs); i++ {
		if mfs[i].GetName() == mfs[i-1].GetName() {
			// Registration refuses this; reaching it is a Table's bug.
			return nil, fmt.Errorf("promtable: family %s gathered twice", mfs[i].GetName())
		}
	}
	return mfs, errors.Join(append(errs, err)...)
}
