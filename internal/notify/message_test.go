package notify

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
)

func TestReached(t *testing.T) {
	limit := money.USD(5000)
	tests := []struct {
		name  string
		spent money.Nanos
		limit money.Nanos
		th    float64
		want  bool
	}{
		{"exactly 80%", money.USD(4000), limit, 0.8, true},
		{"one nano below 80%", money.USD(4000) - 1, limit, 0.8, false},
		// 0.1+0.2 is 0.30000000000000004: a naive float compare says 30% is not reached.
		{"exactly 30% of 0.3-scaled", money.USD(3), money.USD(10), 0.3, true},
		{"exhausted", limit, limit, 1, true},
		{"over", limit + 1, limit, 1, true},
		{"huge limit does not overflow", money.Nanos(9e18), money.Nanos(9e18), 1, true},
		{"huge limit just below", money.Nanos(9e18) - 1, money.Nanos(9e18), 1, false},
		{"above 100%", money.USD(6000), limit, 1.2, true},
		{"zero limit", 1, 0, 0.5, false},
		{"negative spend", -1, limit, 0.5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reached(tt.spent, tt.limit, tt.th); got != tt.want {
				t.Errorf("reached(%s, %s, %v) = %v, want %v", tt.spent, tt.limit, tt.th, got, tt.want)
			}
		})
	}
}

func TestThresholds(t *testing.T) {
	tests := []struct {
		name string
		b    budget.Budget
		want []float64
	}{
		{"enforced adds exhaustion", budget.Budget{Limit: 1, Enforce: true, AlertAt: []float64{0.8, 0.5}}, []float64{0.5, 0.8, 1}},
		{"enforced without alert_at", budget.Budget{Limit: 1, Enforce: true}, []float64{1}},
		{"alert_at 1 not doubled", budget.Budget{Limit: 1, Enforce: true, AlertAt: []float64{1, 0.9}}, []float64{0.9, 1}},
		{"dry run keeps only alert_at", budget.Budget{Limit: 1, AlertAt: []float64{0.9, 1.5}}, []float64{0.9, 1.5}},
		{"dry run without alert_at", budget.Budget{Limit: 1}, nil},
		{"nonsense fractions dropped", budget.Budget{Limit: 1, AlertAt: []float64{0, -1}}, nil},
		{"no limit", budget.Budget{Limit: 0, Enforce: true, AlertAt: []float64{0.5}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, thresholds(tt.b)); diff != "" {
				t.Errorf("thresholds (-want +got):\n%s", diff)
			}
		})
	}
}

func TestText(t *testing.T) {
	st := budget.Status{
		Budget: budget.Budget{Scope: budget.ScopeTeam, Name: "search", ID: "monthly",
			Period: budget.Monthly, Limit: money.USD(5000), Enforce: true},
		Spent: money.USD(4000) + 500_000_000,
	}
	st.WindowStart, st.ResetsAt = st.Budget.Window(testNow)
	tests := []struct {
		name    string
		th      float64
		enforce bool
		want    string
	}{
		{"threshold", 0.8, true, `Budget alert: team "search" budget "monthly" (monthly) has spent 4000.5 USD of 5000 USD (80.0%), past its 80% alert threshold. Resets 2026-12-01T00:00:00Z.`},
		{"exhausted", 1, true, `Budget exhausted: team "search" budget "monthly" (monthly) has spent 4000.5 USD of 5000 USD (80.0%); requests are refused until it resets. Resets 2026-12-01T00:00:00Z.`},
		{"dry run", 0.555, false, `Budget alert: team "search" budget "monthly" (monthly) has spent 4000.5 USD of 5000 USD (80.0%), past its 55.5% alert threshold (dry run: not enforced). Resets 2026-12-01T00:00:00Z.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := st
			s.Budget.Enforce = tt.enforce
			if got := newEvent(s, tt.th).text(); got != tt.want {
				t.Errorf("text =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
