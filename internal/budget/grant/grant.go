package grant

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// Options configure admission grants (see Granted).
type Options struct {
	// Window is how much of this replica's recent demand one grant covers:
	// a grant is grown to what the replica reserved in the last Window
	// (at least minGrant times the request being admitted). Required.
	Window time.Duration
	// Lease is a grant's lease, renewed while it holds anything. Holds
	// asking for a longer TTL (batches) take the exact path. Default 60s.
	Lease time.Duration
	// Idle returns a grant's unused amount once nothing has drawn on it
	// for this long, and is how long a refused growth sends requests the
	// exact path. Default 1s.
	Idle time.Duration
	// Flush is the longest settled requests wait for a step: spend reaches
	// the store at most this much later, and a crash within it charges those
	// requests their estimates. The growth steps of a busy grant carry
	// its settlements sooner, so steps follow traffic: a fixed 20ms made
	// a step every 20ms whatever the rate, 0.17 script calls per request
	// at 300 requests/s and 0.5 at 100. Default 250ms.
	Flush time.Duration
	// Journal receives, at Close, what a grant could not charge or return
	// because the store was unreachable (see Closing). Without one, such
	// a grant is charged in full when its lease ends.
	Journal Journal
}

// Granted is a store (Redis or embedded) whose replica admits most
// requests from grants instead of placing one hold per request. A grant is
// a hold the replica places on all the windows a service's requests
// reserve against (one per budget set), sized to a slice of its recent
// demand; Reserve draws a request's estimate from it in memory, with no
// store call on the request path. Settle records the request locally, and
// one grant step (see Backend) up to Flush later charges the actual costs of everything settled since
// and takes their estimates out of the grant. Steps also grow the grant
// ahead of demand, return its unused amount when it sits idle, and renew
// its lease.
//
// What holds as with per-request holds: a grant fits every enforced limit
// when it is placed or grown, atomically, so the sum of spend, holds and
// grants of all replicas never exceeds a cap. Spend is charged once per
// request (steps are numbered and applied at most once) at its actual
// cost.
//
// What changes:
//   - A replica that dies is charged its grants' whole amounts when their
//     leases end: the estimates of its requests in flight (as with holds)
//     and also the unused slices, at most one Window of its demand per
//     budget set. Per-request holds would charge the estimates only.
//   - Near a cap, a replica's unused slice is budget no other replica can
//     use until it is returned (after Idle, or when a growth is refused).
//     When a grant cannot grow, requests take the exact per-request path
//     for Idle, so the last of a budget is admitted request by request.
//   - Spend reaches the store up to Flush after a request ends, and the
//     remaining-budget header is this replica's view as of its last step.
//
// Grants are per process: a restart starts without any. The old ones end
// at their leases, or on the embedded store when the next process opens
// the file (see boltstore.Open). Holds that name a principal's budget always take
// the exact path (see hasPrincipal).
type Granted struct {
	s Backend
	storeEnv
	o Options

	mu     sync.Mutex
	active map[string]*grant // by joined window keys: where draws go
	all    map[string]*grant // by ID: every grant not yet drained
	next   atomic.Uint64
	pace   stepPace
	stop   chan struct{}
	closed sync.Once
	// untrack stops the store's in-flight gauge counting this replica's
	// draws (see drawsLive).
	untrack func()
	bg      sync.WaitGroup
}

var _ budget.Store = (*Granted)(nil)

// New returns a store that admits from grants on s: the Redis store or
// the embedded one.
func New(s Backend, o Options) (*Granted, error) {
	if s == nil || o.Window <= 0 {
		return nil, errors.New("budget: grants need a store and a positive window")
	}
	if o.Lease <= 0 {
		o.Lease = 60 * time.Second
	}
	if o.Idle <= 0 {
		o.Idle = time.Second
	}
	if o.Flush <= 0 {
		o.Flush = 250 * time.Millisecond
	}
	g := &Granted{s: s, storeEnv: s.GrantEnv().local(), o: o, active: map[string]*grant{}, all: map[string]*grant{}, stop: make(chan struct{})}
	g.pace.now = time.Now
	g.untrack = func() {}
	if g.flight != nil {
		g.untrack = g.flight.Also(g.drawsLive)
	}
	g.bg.Add(1)
	go g.tend()
	return g, nil
}

// grant is one replica's grant on one budget set. Every field below mu is
// guarded by it.
type grant struct {
	Spec

	mu         sync.Mutex
	held       money.Nanos // what the store holds, as of the last applied step
	free       money.Nanos // the part of held no request in flight has drawn
	exp        time.Time   // lease end, as of the last applied step
	step       int64       // last applied step
	drawn      map[string]money.Nanos
	doneEst    money.Nanos // settled requests not yet sent in a step
	doneActual money.Nanos
	doneLedger map[budget.LineKey]budget.LedgerLine // their ledger lines, summed
	doneSince  time.Time                            // when the first of them settled, by the real clock the flush timer runs on
	unsent     *Step                                // sent, outcome unknown: resent as it is
	running    bool                                 // a step is in flight
	ran        chan struct{}
	lastErr    error // outcome of the last step, for callers that waited on it
	flushing   bool  // a flush is scheduled
	flush      *time.Timer
	rem        money.Nanos
	hasRem     bool
	lost       bool      // its lease ended in the store; only corrections remain
	broken     bool      // a step failed for good: never drawn on again
	coolUntil  time.Time // a growth was refused: draws go the exact path
	lastDraw   time.Time
	lastAmt    money.Nanos    // the last estimate drawn: what a request needs
	demand     [2]money.Nanos // drawn in the current and the previous Window
	demandAt   time.Time      // start of the current Window
	window     time.Duration  // Options.Window (0 for a journaled grant)
	pace       *stepPace      // how long the store's steps take (see target)
	failures   int            // steps failed in a row
	warnedAt   time.Time      // when the last of them was logged
}

// SettlesInMemory marks a grant as a reservation's budget.Draw.
func (*grant) SettlesInMemory() {}

// drawOf returns the grant r drew on, nil for a hold of its own.
func drawOf(r budget.Reservation) *grant {
	gr, _ := r.Draw.(*grant)
	return gr
}

// grantWarnEvery spaces the warnings of a grant whose steps keep failing:
// the tend loop retries about four times a second, and an outage of the
// store should not bury the rest of the log.
const grantWarnEvery = 10 * time.Second

// noteStep counts a step's outcome and returns how many steps have failed
// in a row: with err, including this one, and warn is set when it should
// be logged (the first of a run, then one per grantWarnEvery); without,
// the run it ends (0 if none).
func (gr *grant) noteStep(err error, now time.Time) (warn bool, failed int) {
	gr.mu.Lock()
	defer gr.mu.Unlock()
	if err == nil {
		failed, gr.failures = gr.failures, 0
		return false, failed
	}
	gr.failures++
	if gr.failures == 1 || now.Sub(gr.warnedAt) >= grantWarnEvery {
		gr.warnedAt = now
		warn = true
	}
	return warn, gr.failures
}

// minGrant is the smallest grant in requests. With 4, a service at a few
// requests per second grew its grant every other request (4,349 script
// calls for 6,000 sequential requests); with 16, every eighth at most. A
// crash then costs at most 16 estimates beyond the requests in flight.
const minGrant = 16

// sameLimits reports whether budgets carry the limits and enforcement a
// grant was grown under; a policy change starts a new grant, and the old
// one drains.
func sameLimits(a, b []budget.Budget) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Limit != b[i].Limit || a[i].Enforce != b[i].Enforce {
			return false
		}
	}
	return true
}

// Reserve implements Store: it draws on the hold's grant, growing it
// first if it is short, and takes the exact path when the grant cannot
// serve (a refused growth, an unreachable store, a long hold).
func (g *Granted) Reserve(ctx context.Context, h budget.Hold) (budget.Reservation, error) {
	start := time.Now()
	now := g.opts.Clock()
	a, err := budget.PrepareHold(h, now, g.opts.DefaultTTL)
	if err != nil {
		g.metrics.Observe("reserve", start, err)
		return budget.Reservation{}, err
	}
	if len(a.Keys) == 0 || h.TTL > g.o.Lease || hasPrincipal(h.Budgets) {
		return g.s.Reserve(ctx, h)
	}
	gr := g.grantFor(a, now)
	for try := 0; try < 3; try++ {
		r, ok, grow, low := gr.draw(a, now, g.o, try == 0)
		if ok {
			if low {
				g.kick(gr)
			}
			g.metrics.Observe("reserve", start, nil)
			return r, nil
		}
		if !grow {
			break
		}
		if err := g.stepNow(ctx, gr, h.Amount); err != nil {
			if errors.Is(err, errGrantGone) {
				break
			}
			// The exact path would wait for the same unreachable store.
			g.metrics.Observe("reserve", start, err)
			return budget.Reservation{}, fmt.Errorf("budget: reserve %q: %w", h.RequestID, err)
		}
		now = g.opts.Clock()
	}
	return g.s.Reserve(ctx, h)
}

// grantFor returns the grant a's hold draws on: the active one on its
// windows, or a new one if there is none or it was grown under other limits.
func (g *Granted) grantFor(a budget.PreparedHold, now time.Time) *grant {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gr := g.active[a.KeysJoin]; gr != nil && sameLimits(gr.Budgets, a.Hold.Budgets) {
		return gr
	}
	gr := &grant{
		Spec: Spec{ID: grantID(g.owner, g.next.Add(1)), Budgets: a.Hold.Budgets,
			Keys: a.Keys, KeysJoin: a.KeysJoin, Ends: a.Ends, Lease: g.o.Lease},
		drawn: map[string]money.Nanos{}, lastDraw: now, demandAt: now, window: g.o.Window, pace: &g.pace,
	}
	g.active[a.KeysJoin], g.all[gr.ID] = gr, gr
	return gr
}

// drawsLive counts the draws not yet settled on grants whose lease has
// not ended, for the store's holds_in_flight gauge: the grant's own record
// of its draws, instead of a second one per request in the store's set.
func (g *Granted) drawsLive(now time.Time) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, gr := range g.all {
		gr.mu.Lock()
		if !gr.lost && !gr.broken && gr.exp.After(now) {
			n += len(gr.drawn)
		}
		gr.mu.Unlock()
	}
	return n
}

// usable reports whether draws may go on: the grant is live and its lease
// has at least a third to run, so a request drawn now is covered while the
// lease is renewed (every third) even if one renewal fails.
func (gr *grant) usable(now time.Time) bool {
	return !gr.lost && !gr.broken && gr.exp.Sub(now) > gr.Lease/3
}

// draw takes a's amount from the grant. When it cannot, grow reports that a
// step could make it possible; false sends the hold the exact path. low
// reports that the grant should grow ahead of demand. first is a request's
// first attempt: demand counts what requests ask for, drawn or not, so a
// grant that ran dry while a step was slow is grown for the requests that
// waited too.
func (gr *grant) draw(a budget.PreparedHold, now time.Time, o Options, first bool) (r budget.Reservation, ok, grow, low bool) {
	amt := a.Hold.Amount
	gr.mu.Lock()
	defer gr.mu.Unlock()
	if gr.lost || gr.broken || now.Before(gr.coolUntil) {
		return budget.Reservation{}, false, false, false
	}
	if _, dup := gr.drawn[a.Hold.RequestID]; dup {
		return budget.Reservation{}, false, false, false // the exact path reports the duplicate
	}
	if first {
		gr.noteDemand(now, amt, o.Window)
	}
	if gr.free < amt || !gr.usable(now) {
		return budget.Reservation{}, false, true, false
	}
	gr.free -= amt
	gr.drawn[a.Hold.RequestID] = amt
	gr.lastDraw, gr.lastAmt = now, amt
	r = a.Admitted()
	r.Draw = gr
	if gr.hasRem {
		r.Remaining, r.HasRemaining = max(gr.rem+gr.free, 0), true
	}
	// Grown ahead of demand once a quarter of the target is left: the step
	// takes a round trip, a quarter of the target is at least four
	// requests, and each growth then adds three quarters of a grant, so a
	// quiet grant steps every twelve requests instead of every eight.
	low = !gr.running && gr.free < max(gr.target(amt)/4, 2*amt)
	return r, true, false, low
}

func (gr *grant) noteDemand(now time.Time, amt money.Nanos, window time.Duration) {
	switch d := now.Sub(gr.demandAt); {
	case d >= 2*window:
		gr.demand = [2]money.Nanos{}
		gr.demandAt = now
	case d >= window:
		gr.demand = [2]money.Nanos{0, gr.demand[0]}
		gr.demandAt = gr.demandAt.Add(window)
	}
	gr.demand[0] += amt
}

// maxSlowScale bounds how many Windows of demand a grant covers while its
// store's steps are slow (see target), and so what a crash then charges.
const maxSlowScale = 8

// target is what the grant should hold free after a growth: a Window of
// demand, at least minGrant requests of size amt, and no more than a quarter
// of what the budgets had left at the last step, so replicas near a cap
// take small slices.
//
// A growth is asked for once a quarter of the target is left, and that
// quarter must last until the step lands. While steps take longer than an
// eighth of a Window (an embedded store's fsyncs on a busy disk: 38 ms at
// p99 and 200 ms at worst on the bench machine under other load, against
// well under a millisecond idle), it would not; the target then covers
// eight steps' durations of demand, so the quarter left covers two, up to
// maxSlowScale Windows.
func (gr *grant) target(amt money.Nanos) money.Nanos {
	t := max(gr.demand[0], gr.demand[1], minGrant*amt)
	if gr.window > 0 && gr.pace != nil { // a journaled grant only closes
		if took := gr.pace.current(); 8*took > gr.window {
			permille := min(int64(8*took*1000/gr.window), maxSlowScale*1000)
			t = t/1000*money.Nanos(permille) + t%1000*money.Nanos(permille)/1000
		}
	}
	if gr.hasRem {
		t = min(t, max(gr.rem/4, amt))
	}
	return t
}

// hasPrincipal reports whether a hold names a principal's budget. Such
// holds take the exact per-request path under admission grants: a grant
// is per budget set, so one per principal would park a slice of the
// service's budget (at least minGrant estimates) for every caller.
func hasPrincipal(budgets []budget.Budget) bool {
	for i := range budgets {
		if budgets[i].Scope == budget.ScopePrincipal {
			return true
		}
	}
	return false
}
