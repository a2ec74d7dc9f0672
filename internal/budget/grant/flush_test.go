package grant_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/grant"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

// replicaFlushing opens a Granted store whose settlements wait up to
// flush; its steps are counted in h.steps.
func (h grantHarness) replicaFlushing(t *testing.T, flush time.Duration) *grant.Granted {
	g, err := grant.New(countSteps{h.backend(t, h.opts), h.steps}, grant.Options{Window: 100 * time.Millisecond, Lease: time.Minute, Flush: flush})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// A settlement waits for the grant's next step rather than calling the
// store on its own: a growth step carries it, and Close charges what is
// left. A quiet grant then costs the store a step per growth, not one per
// request.
func TestGrantSettlementsRideOnGrowthSteps(t *testing.T) {
	grantBackends(t, grantSettlementsRideOnGrowthSteps)
}

func grantSettlementsRideOnGrowthSteps(t *testing.T, h grantHarness) {
	svc := storetest.Bud(budget.ScopeService, "search", budget.Daily, 1_000_000_000, true)
	g := h.replicaFlushing(t, time.Hour)

	first := storetest.MustReserve(t, g, storetest.Hold("r0", 100, time.Minute, svc))
	before := h.steps.Load()
	storetest.MustSettle(t, g, first, 70)
	time.Sleep(300 * time.Millisecond) // a timer or a goroutine per settlement would have run by now
	if steps := h.steps.Load() - before; steps != 0 {
		t.Fatalf("a settlement alone made %d grant steps before Flush", steps)
	}
	if s, _ := storetest.Levels(t, h.plain, svc); s != 0 {
		t.Fatalf("spent %s before any step", s)
	}
	// Draw until the grant (16 requests' worth at first) has to grow: that
	// step charges the settlement.
	const n = 40
	for i := 1; i <= n; i++ {
		storetest.MustSettle(t, g, storetest.MustReserve(t, g, storetest.Hold("r"+strconv.Itoa(i), 100, time.Minute, svc)), 70)
	}
	storetest.Eventually(t, "a growth step charges the waiting settlements", func() bool { s, _ := storetest.Levels(t, h.plain, svc); return s >= 70 })
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if s, r := storetest.Levels(t, h.plain, svc); s != (n+1)*70 || r != 0 {
		t.Errorf("after close: spent %s reserved %s, want %d and 0", s, r, (n+1)*70)
	}
}

// The flush timer a settlement arms sends nothing when a step has
// already charged every settlement: its step would only renew a lease the
// tend loop renews anyway.
func TestGrantFlushTimerSkipsWhatAStepCarried(t *testing.T) {
	grantBackends(t, grantFlushTimerSkipsWhatAStepCarried)
}

func grantFlushTimerSkipsWhatAStepCarried(t *testing.T, h grantHarness) {
	svc := storetest.Bud(budget.ScopeService, "search", budget.Daily, 1_000_000_000, true)
	g := h.replicaFlushing(t, 100*time.Millisecond)
	defer g.Close()

	r := storetest.MustReserve(t, g, storetest.Hold("r0", 100, time.Minute, svc))
	storetest.MustSettle(t, g, r, 70) // arms the flush timer
	if err := grant.StepNow(context.Background(), g, r); err != nil {
		t.Fatal(err)
	}
	if s, _ := storetest.Levels(t, h.plain, svc); s != 70 {
		t.Fatalf("spent %s after the step, want 70", s)
	}
	before := h.steps.Load()
	time.Sleep(400 * time.Millisecond) // the timer fires
	if steps := h.steps.Load() - before; steps != 0 {
		t.Errorf("the flush timer made %d grant steps with nothing to settle", steps)
	}
}

// A flush timer armed by a settlement a step has since carried waits for
// the settlements after it to reach Flush's age: stepping when it fires
// would add a step per Flush to a grant whose growth steps carry its
// settlements anyway.
func TestGrantFlushWaitsForTheOldestSettlement(t *testing.T) {
	grantBackends(t, grantFlushWaitsForTheOldestSettlement)
}

func grantFlushWaitsForTheOldestSettlement(t *testing.T, h grantHarness) {
	const flush = time.Second
	svc := storetest.Bud(budget.ScopeService, "search", budget.Daily, 1_000_000_000, true)
	g := h.replicaFlushing(t, flush)
	defer g.Close()

	armed := time.Now()
	r0 := storetest.MustReserve(t, g, storetest.Hold("r0", 100, time.Minute, svc))
	r1 := storetest.MustReserve(t, g, storetest.Hold("r1", 100, time.Minute, svc))
	storetest.MustSettle(t, g, r0, 70) // arms the flush timer
	time.Sleep(flush / 2)
	if err := grant.StepNow(context.Background(), g, r0); err != nil { // carries r0
		t.Fatal(err)
	}
	before := h.steps.Load()
	storetest.MustSettle(t, g, r1, 30)
	time.Sleep(time.Until(armed.Add(flush + flush/4))) // the timer has fired
	if steps := h.steps.Load() - before; steps != 0 {
		t.Fatal("the flush timer stepped for a settlement younger than Flush")
	}
	storetest.Eventually(t, "the younger settlement is charged once it has waited Flush", func() bool {
		s, _ := storetest.Levels(t, h.plain, svc)
		return s == 100
	})
	if steps := h.steps.Load() - before; steps != 1 {
		t.Errorf("%d steps charged one settlement, want 1", steps)
	}
}
