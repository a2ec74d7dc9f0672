package budget

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPrepareHoldNamesEachWindow(t *testing.T) {
	now := time.Date(2026, 12, 8, 23, 30, 0, 0, time.UTC)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	budgets := []Budget{
		{Scope: ScopeService, Name: "recommendation", ID: "daily", Period: Daily, Location: berlin},
		{Scope: ScopeTeam, Name: "search", ID: "monthly", Period: Monthly},
		{Scope: ScopeWorkspace, Name: "prod", ID: "total", Period: Total},
	}
	a, err := PrepareHold(Hold{RequestID: "req_1", Budgets: budgets, Amount: 5}, now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// 23:30 UTC is already the 9th in Berlin.
	want := []string{"service:recommendation:daily:20261209", "team:search:monthly:20261201", "workspace:prod:total:all"}
	if strings.Join(a.Keys, ",") != strings.Join(want, ",") || a.KeysJoin != strings.Join(want, "\n") {
		t.Errorf("keys %q, joined %q; want %q", a.Keys, a.KeysJoin, want)
	}
	for i, b := range budgets {
		start, end := b.Window(now)
		if a.Keys[i] != b.WindowKey(start) || !a.Ends[i].Equal(end) {
			t.Errorf("budget %d: key %q end %v, want %q %v", i, a.Keys[i], a.Ends[i], b.WindowKey(start), end)
		}
	}
	if !a.Expiry.Equal(now.Add(time.Minute)) {
		t.Errorf("expiry %v, want the default lease from now", a.Expiry)
	}
}

func TestPrepareHoldRefuses(t *testing.T) {
	now := time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC)
	svc := Budget{Scope: ScopeService, Name: "recommendation", ID: "daily", Period: Daily}
	team := Budget{Scope: ScopeTeam, Name: "search", ID: "daily", Period: Daily}
	for name, tc := range map[string]struct {
		h    Hold
		says string
	}{
		"no request ID":   {Hold{Budgets: []Budget{svc}}, "without request ID"},
		"negative amount": {Hold{RequestID: "r", Budgets: []Budget{svc}, Amount: -1}, "negative"},
		"listed twice":    {Hold{RequestID: "r", Budgets: []Budget{svc, team, svc}}, "listed twice"},
		"newline in a name": {Hold{RequestID: "r", Budgets: []Budget{svc, {Scope: ScopeTeam, Name: "a\nb", ID: "daily", Period: Daily}}},
			"contains a newline"},
	} {
		_, err := PrepareHold(tc.h, now, time.Minute)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want ErrInvalid saying %q", name, err, tc.says)
		}
	}
}
