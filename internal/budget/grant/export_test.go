package grant

import (
	"context"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

// Crash stops g's background work without returning anything, as a killed
// process would.
func Crash(g *Granted) {
	g.closed.Do(func() { close(g.stop) })
	g.bg.Wait()
}

// StepNow runs a step of the grant r drew on now, or waits for the one
// running, and returns its outcome.
func StepNow(ctx context.Context, g *Granted, r budget.Reservation) error {
	return g.step(ctx, drawOf(r), 0, false, true)
}

// SpecFor returns the spec of the grant a's hold draws on, starting one if
// there is none.
func SpecFor(g *Granted, a budget.PreparedHold, now time.Time) *Spec {
	return &g.grantFor(a, now).Spec
}

// BackendOf returns the store g's grants step on.
func BackendOf(g *Granted) Backend { return g.s }
