package grant

import (
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

// A grant covers the demand of eight steps' durations (so the quarter it
// grows at covers two) while its store's steps take longer than an eighth
// of a Window, up to maxSlowScale Windows, and shrinks back as the slow
// step is forgotten.
func TestGrantTargetCoversSlowSteps(t *testing.T) {
	clock := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	pace := &stepPace{now: func() time.Time { return clock }}
	gr := &grant{window: 100 * time.Millisecond, pace: pace}
	gr.demand[0] = 1000
	if got := gr.target(10); got != 1000 {
		t.Fatalf("no step yet: target %s, want a Window of demand (1000)", got)
	}
	pace.note(10 * time.Millisecond)
	if got := gr.target(10); got != 1000 {
		t.Errorf("10 ms steps: target %s, want a Window of demand (1000)", got)
	}
	pace.note(30 * time.Millisecond)
	if got := gr.target(10); got != 2400 {
		t.Errorf("a 30 ms step: target %s, want the demand of 240 ms (2400)", got)
	}
	pace.note(10 * time.Second)
	if got := gr.target(10); got != maxSlowScale*1000 {
		t.Errorf("a 10 s step: target %s, want %d Windows (%d)", got, maxSlowScale, maxSlowScale*1000)
	}
	// Fast steps do not wipe a slow one out: only time does.
	for range 300 {
		pace.note(time.Millisecond)
	}
	if got := gr.target(10); got != maxSlowScale*1000 {
		t.Errorf("300 fast steps right after a slow one: target %s, want still %d", got, maxSlowScale*1000)
	}
	clock = clock.Add(paceHalfLife)
	pace.note(time.Millisecond)
	if got := gr.target(10); got != maxSlowScale*1000 {
		t.Errorf("one half-life later (5 s): target %s, want still %d", got, maxSlowScale*1000)
	}
	clock = clock.Add(10 * paceHalfLife) // 10 s / 2^11: under 5 ms
	if got := gr.target(10); got != 1000 {
		t.Errorf("eleven half-lives after the slow step: target %s, want 1000 again", got)
	}
	pace.note(30 * time.Millisecond)
	gr.hasRem, gr.rem = true, 2000
	if got := gr.target(10); got != 500 {
		t.Errorf("near the cap: target %s, want a quarter of what is left (500)", got)
	}
}

// A grant opened after a slow step starts grown: the pace is the store's.
func TestNewGrantStartsWithTheStoresPace(t *testing.T) {
	g := &Granted{o: Options{Window: 100 * time.Millisecond}, active: map[string]*grant{}, all: map[string]*grant{}}
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	g.pace.now = func() time.Time { return at }
	g.pace.note(50 * time.Millisecond)
	gr := g.grantFor(budget.PreparedHold{KeysJoin: "k"}, time.Now())
	gr.demand[0] = 1000
	if got := gr.target(10); got != 4000 {
		t.Errorf("new grant after a 50 ms step: target %s, want the demand of 400 ms (4000)", got)
	}
}
