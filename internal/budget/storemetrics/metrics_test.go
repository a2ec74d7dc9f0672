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

// Count adds what the counts given to Also report, at the set's clock,
// until each is stopped, and still drops holds whose lease ended.
func TestInFlightAddsOtherCounts(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	f := NewInFlight(func() time.Time { return now })
	f.Add("a", now.Add(time.Minute))
	f.Add("b", now.Add(time.Second))
	var asked time.Time
	stop := f.Also(func(at time.Time) int { asked = at; return 5 })
	stop2 := f.Also(func(time.Time) int { return 2 })
	if got := f.Count(); got != 9 || !asked.Equal(now) {
		t.Fatalf("count %v (asked at %v), want 9 at %v", got, asked, now)
	}
	stop()
	now = now.Add(2 * time.Second) // b's lease ended
	if got := f.Count(); got != 3 {
		t.Fatalf("count %v after one stopped and a lease ended, want 3", got)
	}
	stop2()
	if got := f.Count(); got != 1 {
		t.Fatalf("count %v, want 1", got)
	}
}
