package budget

import (
	"testing"
	"time"
)

func TestPrincipalWindowTTL(t *testing.T) {
	bud := func(scope Scope, name string, p Period) Budget {
		return Budget{Scope: scope, Name: name, ID: string(p), Period: p, Limit: 1, Enforce: true}
	}
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	daily := bud(ScopePrincipal, "s/f/v", Daily)
	_, end := daily.Window(now)
	if got := daily.WindowKeyTTL(end, now); got != 14*time.Hour+principalGrace {
		t.Errorf("principal daily window TTL %v, want to its end plus %v", got, principalGrace)
	}
	if got := bud(ScopePrincipal, "s/f/v", Total).WindowKeyTTL(time.Time{}, now); got != principalTotalKeep-10*time.Hour {
		t.Errorf("principal total window TTL %v, want %v from the start of the day", got, principalTotalKeep)
	}
	svc := bud(ScopeService, "s", Daily)
	if got := svc.WindowKeyTTL(end, now); got != WindowKeyTTL(end, now) {
		t.Errorf("a service window's TTL changed: %v", got)
	}
	if got := bud(ScopeService, "s", Total).WindowKeyTTL(time.Time{}, now); got != 0 {
		t.Errorf("a service total window now expires: %v", got)
	}
}
