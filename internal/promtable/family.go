package promtable

import (
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Labels are one series' labels, built once and shared by every scrape:
// the label pairs sorted by name, and the same in the text format.
type Labels struct {
	pairs []*dto.LabelPair
	text  string // {a="x",b="y"}; empty without labels
}

// Schema is a family's label names, and the order in which a registry
// would list them (sorted by name).
type Schema struct {
	names  []string
	byName []int // byName[i] is the position in names of the i-th name in sorted order
}

// NewSchema returns the schema of a family labelled by names, in the order
// callers give values. Names must be valid Prometheus label names.
func NewSchema(names ...string) Schema {
	byName := make([]int, len(names))
	for i := range byName {
		byName[i] = i
	}
	slices.SortFunc(byName, func(a, b int) int { return strings.Compare(names[a], names[b]) })
	for i := range byName {
		if !validName(names[byName[i]], false) || i > 0 && names[byName[i]] == names[byName[i-1]] {
			panic(fmt.Sprintf("promtable: label %q invalid or twice", names[byName[i]]))
		}
	}
	return Schema{names: slices.Clone(names), byName: byName}
}

// Names returns the label names in the order callers give values.
func (s Schema) Names() []string { return slices.Clone(s.names) }

// Labels builds the labels of the series with these values (in the order
// of the names given to NewSchema). The labels of a set of series are
// allocated together, so pass many at once where there are many.
func (s Schema) Labels(values ...[]string) []Labels {
	n := len(s.names)
	pairs := make([]dto.LabelPair, n*len(values))
	ptrs := make([]*dto.LabelPair, n*len(values))
	out := make([]Labels, len(values))
	var b strings.Builder
	for i, vs := range values {
		if len(vs) != n {
			panic(fmt.Sprintf("promtable: %d label values for %d labels", len(vs), n))
		}
		b.Reset()
		for j, k := range s.byName {
			p := &pairs[i*n+j]
			p.Name, p.Value = &s.names[k], &vs[k]
			ptrs[i*n+j] = p
			if j == 0 {
				b.WriteByte('{')
			} else {
				b.WriteByte(',')
			}
			b.WriteString(s.names[k])
			b.WriteString(`="`)
			labelValueEscaper.WriteString(&b, vs[k])
			b.WriteByte('"')
		}
		if n > 0 {
			b.WriteByte('}')
		}
		out[i] = Labels{pairs: ptrs[i*n : (i+1)*n : (i+1)*n], text: b.String()}
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

// Series is one sample of a family.
type Series struct {
	Labels  Labels
	Value   float64
	Created *timestamppb.Timestamp // counters only; nil when unknown
}

// Family is a gauge or counter family whose series are sorted (as
// Schema.Compare orders their values) and unique.
type Family struct {
	Name, Help string
	Type       dto.MetricType // GAUGE or COUNTER
	Series     []Series
}

// proto returns f as a registry's Gather returns a family. Its metrics
// take four allocations in all, whatever their number.
func (f Family) proto() *dto.MetricFamily {
	n := len(f.Series)
	ms := make([]dto.Metric, n)
	ptrs := make([]*dto.Metric, n)
	vals := make([]float64, n)
	for i := range f.Series {
		vals[i] = f.Series[i].Value
		ms[i].Label = f.Series[i].Labels.pairs
		ptrs[i] = &ms[i]
	}
	switch f.Type {
	case dto.MetricType_GAUGE:
		gs := make([]dto.Gauge, n)
		for i := range gs {
			gs[i].Value = &vals[i]
			ms[i].Gauge = &gs[i]
		}
	case dto.MetricType_COUNTER:
		cs := make([]dto.Counter, n)
		for i := range cs {
			cs[i].Value, cs[i].CreatedTimestamp = &vals[i], f.Series[i].Created
			ms[i].Counter = &cs[i]
		}
	default:
		panic(fmt.Sprintf("promtable: family %s: type %v", f.Name, f.Type))
	}
	name, help := f.Name, f.Help
	return &dto.MetricFamily{Name: &name, Help: &help, Type: f.Type.Enum(), Metric: ptrs}
}

// Collect sends families to ch as a collector sends its series; descs
// gives each family's descriptor by name. Tables use it for Collect,
// which a plain prometheus.Registry calls.
func Collect(ch chan<- prometheus.Metric, descs map[string]*prometheus.Desc, families []Family) {
	for _, f := range families {
		if len(f.Series) == 0 {
			continue
		}
		d := descs[f.Name]
		for _, m := range f.proto().Metric {
			ch <- metric{d, m}
		}
	}
}

// metric is one series of a family, as a prometheus.Metric.
type metric struct {
	desc *prometheus.Desc
	m    *dto.Metric
}

func (m metric) Desc() *prometheus.Desc { return m.desc }

func (m metric) Write(out *dto.Metric) error {
	out.Label, out.Gauge, out.Counter = m.m.Label, m.m.Gauge, m.m.Counter
	return nil
}

// validName reports whether s is a metric name (a label name without
// colons) that every exposition format and escaping scheme writes as it
// is.
func validName(s string, colons bool) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c == ':' && colons || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return true
}
