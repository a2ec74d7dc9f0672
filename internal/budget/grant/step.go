package grant

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/storemetrics"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// Backend is a store admission grants run on: the exact per-request
// path (Store) for what a grant cannot serve, and the grant step. The
// Redis store implements the step with grant.lua, the embedded store with
// one bbolt transaction; both follow one contract:
//
//   - A step applies atomically, and at most once per step number: a step
//     whose number was applied before changes nothing and answers "dup"
//     with its first outcome's tag and lease end; a step out of order fails
//     with ErrInvalid. The first step of a grant is number 1.
//   - It charges st.Actual to every window of the grant, adds st.Ledger,
//     and takes st.Dec() out of the grant's hold.
//   - It grows the hold by st.Add when spent plus live holds plus st.Add
//     fits every enforced limit, read before the step ("ok"); otherwise it
//     keeps the rest of the step without the growth ("over").
//   - It renews the lease of what the grant holds to st.Exp.
//   - A grant whose lease ended was charged its whole amount as an orphan
//     (the store's pruning, as for a hold); a step of such a grant only
//     corrects spent by st.Actual-st.Dec() on every window ("lost").
//   - The reply carries every window's spent and live holds as read before
//     the step ("dup": as they are now), and the orphans the step pruned.
//
// Store epochs are checked as for every other call (ErrStoreReset).
type Backend interface {
	budget.Store
	StepGrant(ctx context.Context, g *Spec, st *Step) (Reply, error)
	// GrantEnv is what draws share with the store: its options, metrics,
	// in-flight gauge and owner token.
	GrantEnv() Env
}

// Env is what a store shares with the grants running on it: draws read
// its clock and default lease, count in its metrics and in-flight gauge,
// and are named after its owner token (random per store instance).
type Env struct {
	Options storeopts.Options
	Metrics *storemetrics.Metrics
	Flight  *storemetrics.InFlight
	Owner   string
}

// storeEnv is Env as the grants keep it.
type storeEnv struct {
	opts    storeopts.Options
	metrics *storemetrics.Metrics
	flight  *storemetrics.InFlight
	owner   string
}

func (e Env) local() storeEnv {
	return storeEnv{opts: e.Options, metrics: e.Metrics, flight: e.Flight, owner: e.Owner}
}

// Spec is what a step needs to know of its grant: fixed for the
// grant's life.
type Spec struct {
	ID       string
	Budgets  []budget.Budget
	Keys     []string
	KeysJoin string // key in Granted.active
	Ends     []time.Time
	Lease    time.Duration
}

// Step is one step of a grant (see Backend): settle what
// finished, return what is unused, grow if asked, renew the lease. A step
// whose outcome is unknown (the call failed) is resent with the same
// number and amounts, so the store applies it at most once.
type Step struct {
	N       int64
	Held    money.Nanos         // the grant's amount before the step
	Add     money.Nanos         // growth asked
	Est     money.Nanos         // estimates of the requests settled in this step
	Actual  money.Nanos         // their actual cost
	Release money.Nanos         // unused amount returned
	Exp     time.Time           // lease end asked
	Ledger  []budget.LedgerLine // ledger lines of the requests settled in this step
}

// Dec is what the step takes out of the grant's hold: the estimates of
// the requests it settles and the unused amount it returns.
func (st *Step) Dec() money.Nanos { return st.Est + st.Release }

// Reply is what the store did with a step.
type Reply struct {
	Tag     string // ok, over, lost (a "dup" reply carries the first tag)
	Exp     time.Time
	Orphans int64
	Levels  []budget.Level // after the step
}

// StepEffects is what an applied step did to each window, for the
// overshoot metric; the backends report it. The reply's levels came from before the step; this
// adds the step's changes to them exactly, so the grant then reads the
// levels after it.
func StepEffects(gr *Spec, st *Step, rep Reply) []storemetrics.Effect {
	if rep.Tag != "ok" && rep.Tag != "over" {
		return nil
	}
	drsv := -st.Dec()
	if rep.Tag == "ok" {
		drsv += st.Add
	}
	effects := make([]storemetrics.Effect, 0, len(rep.Levels))
	for i := range rep.Levels {
		l := &rep.Levels[i]
		before := l.Spent + l.Reserved
		l.Spent += st.Actual
		l.Reserved += drsv
		b := gr.Budgets[i]
		effects = append(effects, storemetrics.Effect{Before: before, After: l.Spent + l.Reserved,
			Limit: b.Limit, Enforced: b.Enforce, Scope: string(b.Scope)})
	}
	return effects
}

// grantID names a grant: the store's owner token (random per process) and
// a counter. The prefix keeps it apart from request IDs in the hold keys.
func grantID(owner string, n uint64) string {
	return "grant:" + owner + ":" + strconv.FormatUint(n, 10)
}

// unavailable wraps err as budget.ErrUnavailable.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", budget.ErrUnavailable, err)
}
