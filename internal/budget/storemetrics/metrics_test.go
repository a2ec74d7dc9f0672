package storemetrics

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

func TestObserveCountsEachOpAndItsFailures(t *testing.T) {
	m, err := New(prometheus.NewRegistry(), func() float64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	m.Observe("reserve", start, nil)
	m.Observe("reserve", start, budget.ErrOverBudget) // a refusal, not a failure
	m.Observe("settle", start, errors.New("connection refused"))
	m.Observe("unlisted", start, errors.New("timeout")) // an op Ops does not list still counts
	for op, want := range map[string]uint64{"reserve": 2, "settle": 1, "unlisted": 1, "grant": 0} {
		h, err := m.duration.GetMetricWithLabelValues(op)
		if err != nil {
			t.Fatal(err)
		}
		var pb dto.Metric
		if err := h.(prometheus.Metric).Write(&pb); err != nil {
			t.Fatal(err)
		}
		if got := pb.GetHistogram().GetSampleCount(); got != want {
			t.Errorf("%s: %d durations observed, want %d", op, got, want)
		}
	}
	for op, want := range map[string]float64{"reserve": 0, "settle": 1, "unlisted": 1, "grant": 0} {
		if got := testutil.ToFloat64(m.errors.WithLabelValues(op)); got != want {
			t.Errorf("%s: %v errors counted, want %v", op, got, want)
		}
	}
}
