package promtable

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

func text(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// TestCountersGatherAsACounterVec: a Counters family gathered by Registry,
// and collected by a plain registry, reads exactly as a CounterVec fed the
// same adds, beside the registry's own collectors; labels are given out of
// name order and series are added out of value order.
func TestCountersGatherAsACounterVec(t *testing.T) {
	labels := []string{"service", "team", "model"}
	const name, help = "x_cost_total", "Cost by service and model."
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	tab := NewCounters(name, help, labels, nil)
	other := prometheus.NewGauge(prometheus.GaugeOpts{Name: "y_open", Help: "Open."})
	other.Set(3)
	zero := prometheus.NewCounter(prometheus.CounterOpts{Name: "a_first_total", Help: "First."})
	for i := range 300 {
		svc := fmt.Sprintf("svc-%d", (i*7919)%100) // not in order
		model := []string{"opus", "haiku", "sonnet"}[i%3]
		v := float64(i%5) / 4
		vec.WithLabelValues(svc, "team-"+svc[len(svc)-1:], model).Add(v)
		tab.Add(v, svc, "team-"+svc[len(svc)-1:], model)
	}

	plain := prometheus.NewRegistry()
	plain.MustRegister(vec, other, zero)
	want := text(t, plain)

	reg := NewRegistry()
	reg.MustRegister(tab, other, zero)
	if got := text(t, reg); got != want {
		t.Errorf("Registry gathers\n%s\nwant\n%s", got, want)
	}
	viaCollect := prometheus.NewRegistry()
	viaCollect.MustRegister(tab, other, zero)
	if got := text(t, viaCollect); got != want {
		t.Errorf("a plain registry collects\n%s\nwant\n%s", got, want)
	}
	if got, want := tab.Value("svc-7", "team-7", "haiku"), testValue(t, vec.WithLabelValues("svc-7", "team-7", "haiku")); got != want {
		t.Errorf("Value %v, want %v", got, want)
	}
}

func testValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestRegistryRefusesClashes(t *testing.T) {
	reg := NewRegistry()
	reg.MustRegister(NewCounters("x_total", "X.", []string{"a"}, nil))
	if err := reg.Register(prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "Other."})); err == nil {
		t.Error("a collector of a Table's family name was registered")
	}
	if err := reg.Register(NewCounters("x_total", "X.", []string{"a"}, nil)); err == nil {
		t.Error("a second Table of the same family was registered")
	}
	tab := NewCounters("y_total", "Y.", []string{"a"}, nil)
	reg.MustRegister(tab)
	if !reg.Unregister(tab) {
		t.Fatal("Unregister of a Table failed")
	}
	tab.Add(1, "v")
	if strings.Contains(text(t, reg), "y_total") {
		t.Error("an unregistered Table is still gathered")
	}
}

// TestCountersCreatedTimestamp: each series carries its creation time, as
// a CounterVec's does, for scrapers that read it.
func TestCountersCreatedTimestamp(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tab := NewCounters("x_total", "X.", []string{"a"}, func() time.Time { return at })
	tab.Add(2, "v")
	fs, err := tab.Families()
	if err != nil {
		t.Fatal(err)
	}
	if got := fs[0].Series[0].Created.AsTime(); !got.Equal(at) {
		t.Errorf("created %v, want %v", got, at)
	}
}

// TestCountersConcurrent: adds from many goroutines while scrapes run
// lose nothing (run with -race).
func TestCountersConcurrent(t *testing.T) {
	tab := NewCounters("x_total", "X.", []string{"service", "outcome"}, nil)
	reg := NewRegistry()
	reg.MustRegister(tab)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				tab.Add(1, fmt.Sprintf("svc-%d", i%50), fmt.Sprint(g%2))
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	var sum float64
	for _, mf := range must(reg.Gather()) {
		for _, m := range mf.Metric {
			sum += m.GetCounter().GetValue()
		}
	}
	if sum != 4000 {
		t.Errorf("sum %v, want 4000", sum)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// BenchmarkAdd compares an Add to an existing series with a CounterVec's
// WithLabelValues(...).Add, which it replaces on the request path.
func BenchmarkAdd(b *testing.B) {
	labels := []string{"service", "team", "workspace", "outcome"}
	svcs := make([]string, 2000)
	for i := range svcs {
		svcs[i] = fmt.Sprintf("svc-%04d", i)
	}
	b.Run("Counters", func(b *testing.B) {
		tab := NewCounters("x_total", "X.", labels, nil)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			tab.Add(1, svcs[i%len(svcs)], "team", "production", "ok")
			i++
		}
	})
	b.Run("CounterVec", func(b *testing.B) {
		vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "X."}, labels)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			vec.WithLabelValues(svcs[i%len(svcs)], "team", "production", "ok").Add(1)
			i++
		}
	})
}
