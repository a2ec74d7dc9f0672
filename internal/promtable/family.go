package promtable

import (
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Labels are one series' label pairs, sorted by name, built once and
// shared by every scrape (the encoders only read them).
type Labels []*dto.LabelPair

// Schema is a family's label names, and the order in which a registry
// would list them (sorted by name).
type Schema struct {
	names  []string
	byName []int // byName[i] is the position in names of the i-th name in sorted order
}

// NewSchema returns the schema of a family labelled by names, in the order
// callers give values.
func NewSchema(names ...string) Schema {
	byName := make([]int, len(names))
	for i := range byName {
		byName[i] = i
	}
	slices.SortFunc(byName, func(a, b int) int { return strings.Compare(names[a], names[b]) })
	for i := 1; i < len(byName); i++ {
		if names[byName[i]] == names[byName[i-1]] {
			panic(fmt.Sprintf("promtable: label %q twice", names[byName[i]]))
		}
	}
	return Schema{names: slices.Clone(names), byName: byName}
}

// Names returns the label names in the order callers give values.
func (s Schema) Names() []string { return slices.Clone(s.names) }

// Labels builds the label pairs of the series with these values (in the
// order of the names given to NewSchema). The pairs of a set of series are
// allocated together, so pass many at once where there are many.
func (s Schema) Labels(values ...[]string) []Labels {
	n := len(s.names)
	pairs := make([]dto.LabelPair, n*len(values))
	ptrs := make([]*dto.LabelPair, n*len(values))
	out := make([]Labels, len(values))
	for i, vs := range values {
		if len(vs) != n {
			panic(fmt.Sprintf("promtable: %d label values for %d labels", len(vs), n))
		}
		for j, k := range s.byName {
			p := &pairs[i*n+j]
			p.Name, p.Value = &s.names[k], &vs[k]
			ptrs[i*n+j] = p
		}
		out[i] = ptrs[i*n : (i+1)*n : (i+1)*n]
	}
	return out
}

// Compare orders two series' label values (in the order of the names given
// to NewSchema) as a registry orders their series.
func (s Schema) Compare(a, b []string) int {
	for _, k := range s.byName {
		if c := strings.Compare(a[k], b[k]); c != 0 {
			return c
		}
	}
	return 0
}

// Series is one sample of a family being built.
type Series struct {
	Labels  Labels
	Value   float64
	Created *timestamppb.Timestamp // counters only; nil when unknown
}

// Family returns a gauge or counter family of the given series, which the
// caller has sorted (as Schema.Compare orders their values) and made
// unique. Its metrics take four allocations in all, whatever their number.
// It returns nil when there are no series: a registry exports no empty
// family.
func Family(name, help string, typ dto.MetricType, series []Series) *dto.MetricFamily {
	if len(series) == 0 {
		return nil
	}
	ms := make([]dto.Metric, len(series))
	ptrs := make([]*dto.Metric, len(series))
	vals := make([]float64, len(series))
	for i := range series {
		vals[i] = series[i].Value
		ms[i].Label = series[i].Labels
		ptrs[i] = &ms[i]
	}
	switch typ {
	case dto.MetricType_GAUGE:
		gs := make([]dto.Gauge, len(series))
		for i := range gs {
			gs[i].Value = &vals[i]
			ms[i].Gauge = &gs[i]
		}
	case dto.MetricType_COUNTER:
		cs := make([]dto.Counter, len(series))
		for i := range cs {
			cs[i].Value, cs[i].CreatedTimestamp = &vals[i], series[i].Created
			ms[i].Counter = &cs[i]
		}
	default:
		panic(fmt.Sprintf("promtable: family %s: type %v", name, typ))
	}
	return &dto.MetricFamily{Name: &name, Help: &help, Type: typ.Enum(), Metric: ptrs}
}

// Collect sends families, as built by Family, to ch as a collector sends
// its series; descs gives each family's descriptor by name. Tables use it
// for Collect, which a plain prometheus.Registry calls.
func Collect(ch chan<- prometheus.Metric, descs map[string]*prometheus.Desc, families []*dto.MetricFamily) {
	for _, mf := range families {
		d := descs[mf.GetName()]
		for _, m := range mf.Metric {
			ch <- metric{d, m}
		}
	}
}

// metric is one series of a built family, as a prometheus.Metric.
type metric struct {
	desc *prometheus.Desc
	m    *dto.Metric
}

func (m metric) Desc() *prometheus.Desc { return m.desc }

func (m metric) Write(out *dto.Metric) error {
	out.Label, out.Gauge, out.Counter = m.m.Label, m.m.Gauge, m.m.Counter
	return nil
}
