package storetest

import (
	"context"
	"testing"
	"time"
	_ "time/tzdata" // the rollover cases need a real zone on any machine

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// runAdmitConformance covers admission: all or nothing, dry runs, windows.
func runAdmitConformance(t *testing.T, newH NewHarness) {
	ctx := context.Background()
	svc := Bud(budget.ScopeService, "search", budget.Daily, 10, true)
	team := Bud(budget.ScopeTeam, "core", budget.Monthly, 5, true)
	ws := Bud(budget.ScopeWorkspace, "prod", budget.Total, 100, true)

	t.Run("ReserveWithinAndOverLimitAllOrNothing", func(t *testing.T) {
		h := newH(t)
		s := h.Store
		r1 := MustReserve(t, s, Hold("r1", 3, time.Minute, svc, team))
		want := budget.Reservation{
			RequestID: "r1", Keys: []string{svc.Key(T0), team.Key(T0)}, Enforced: []bool{true, true},
			Amount: 3, Remaining: 2, HasRemaining: true,
		}
		if d := cmp.Diff(want, r1, cmpopts.IgnoreUnexported(budget.Reservation{})); d != "" {
			t.Errorf("reservation (-want +got):\n%s", d)
		}
		// svc has room for 3 more, team does not: neither may hold it.
		ex := MustExceed(t, s, Hold("r2", 3, time.Minute, svc, team))
		_, teamEnd := team.Window(T0)
		if ex.Budget.Name != "core" || ex.Spent != 0 || ex.Reserved != 3 || !ex.ResetsAt.Equal(teamEnd) {
			t.Errorf("exceeded = %+v, want team core with 3 reserved resetting %v", ex, teamEnd)
		}
		WantLevel(t, s, svc, 0, 3)
		WantLevel(t, s, team, 0, 3)
		// Exactly at the limit is allowed; one nano more is not.
		r3 := MustReserve(t, s, Hold("r3", 2, time.Minute, svc, team))
		if r3.Remaining != 0 || !r3.HasRemaining {
			t.Errorf("remaining at the limit = %s/%v, want 0/true", r3.Remaining, r3.HasRemaining)
		}
		_ = MustExceed(t, s, Hold("r4", 1, time.Minute, team))
		MustSettle(t, s, r1, 1)
		WantLevel(t, s, svc, 1, 2)
		WantLevel(t, s, team, 1, 2)
		MustReserve(t, s, Hold("r5", 2, time.Minute, team))
		WantLevel(t, s, team, 1, 4)
	})

	t.Run("ZeroBudgetsAdmitAndRecordNothing", func(t *testing.T) {
		s := newH(t).Store
		r := MustReserve(t, s, Hold("free", 7, time.Minute))
		if r.HasRemaining || len(r.Keys) != 0 || r.RequestID != "free" {
			t.Errorf("reservation = %+v, want no keys and no remaining", r)
		}
		MustSettle(t, s, r, 7)
	})

	t.Run("DryRunCountsButNeverRefuses", func(t *testing.T) {
		s := newH(t).Store
		dry := Bud(budget.ScopeService, "canary", budget.Daily, 1, false)
		r1 := MustReserve(t, s, Hold("d1", 5, time.Minute, dry, ws))
		if !r1.HasRemaining || r1.Remaining != 95 || r1.Enforced[0] || !r1.Enforced[1] {
			t.Errorf("reservation = %+v, want remaining 95 from the enforced budget only", r1)
		}
		r2 := MustReserve(t, s, Hold("d2", 5, time.Minute, dry))
		if r2.HasRemaining {
			t.Errorf("dry-run only reservation has remaining %s", r2.Remaining)
		}
		WantLevel(t, s, dry, 0, 10)
		MustSettle(t, s, r1, 4)
		MustSettle(t, s, r2, 6)
		WantLevel(t, s, dry, 10, 0)
		WantLevel(t, s, ws, 4, 0)
	})

	t.Run("PeriodRollover", func(t *testing.T) {
		la, err := time.LoadLocation("America/Los_Angeles")
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name         string
			b            budget.Budget
			first, same  time.Time // same window
			next         time.Time // the following window
			wantKeyFirst string
			wantKeyNext  string
		}{
			{"daily", Bud(budget.ScopeService, "s", budget.Daily, 5, true),
				time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 23, 59, 59, 999e6, time.UTC),
				time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), "service:s:daily:20261127", "service:s:daily:20261128"},
			{"weekly ISO Monday", Bud(budget.ScopeTeam, "t", budget.Weekly, 5, true),
				time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 29, 23, 59, 0, 0, time.UTC),
				time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), "team:t:weekly:20261123", "team:t:weekly:20261130"},
			{"monthly", Bud(budget.ScopeWorkspace, "w", budget.Monthly, 5, true),
				time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 28, 23, 0, 0, 0, time.UTC),
				time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), "workspace:w:monthly:20260201", "workspace:w:monthly:20260301"},
			{"daily in Los Angeles", budget.Budget{Scope: budget.ScopeService, Name: "la", ID: "daily", Period: budget.Daily, Limit: 5, Enforce: true, Location: la},
				time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), time.Date(2026, 11, 28, 7, 59, 0, 0, time.UTC),
				time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC), "service:la:daily:20261127", "service:la:daily:20261128"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := newH(t)
				s := h.Store
				h.Clock.Set(tc.first)
				r := MustReserve(t, s, Hold("a", 4, time.Minute, tc.b))
				if r.Keys[0] != tc.wantKeyFirst {
					t.Errorf("key = %q, want %q", r.Keys[0], tc.wantKeyFirst)
				}
				MustSettle(t, s, r, 4)
				h.Clock.Set(tc.same)
				_ = MustExceed(t, s, Hold("b", 2, time.Minute, tc.b))
				h.Clock.Set(tc.next)
				r = MustReserve(t, s, Hold("c", 2, time.Minute, tc.b))
				if r.Keys[0] != tc.wantKeyNext {
					t.Errorf("next key = %q, want %q", r.Keys[0], tc.wantKeyNext)
				}
				st, err := s.Status(ctx, []budget.Budget{tc.b})
				if err != nil {
					t.Fatal(err)
				}
				if !st[0].WindowStart.Equal(tc.next) || st[0].Spent != 0 || st[0].Reserved != 2 {
					t.Errorf("status after rollover = %+v, want a window starting %v with 2 reserved", st[0], tc.next)
				}
			})
		}
		t.Run("total never resets", func(t *testing.T) {
			h := newH(t)
			r := MustReserve(t, h.Store, Hold("a", 60, time.Minute, ws))
			MustSettle(t, h.Store, r, 60)
			h.Clock.Add(400 * 24 * time.Hour)
			_ = MustExceed(t, h.Store, Hold("b", 41, time.Minute, ws))
			WantLevel(t, h.Store, ws, 60, 0)
		})
	})
}
