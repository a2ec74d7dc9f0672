package grant

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// Journal keeps what a grant could not send the store at Close (the
// settlement journal), to be applied with CloseJournaled once the store
// is back.
type Journal interface {
	AppendGrant(c Closing) error
}

// Closing is what a grant still owed the store when its replica shut
// down while the store was unreachable: the step whose outcome was unknown, the
// settlements made since, and the unused amount to return. Granted.Close
// journals it; the journal's replay applies it with CloseGrant (see
// CloseJournaled), in this process or the next one on the same data dir.
// Without it the grant would be charged in full at its lease end, and the
// actual costs of the requests it admitted during the outage would be lost.
type Closing struct {
	ID         string              `json:"id"`
	Keys       []string            `json:"keys"`
	Limits     []int64             `json:"limits"`
	Enforce    []bool              `json:"enforce"`
	Scopes     []budget.Scope      `json:"scopes"`
	Ends       []time.Time         `json:"ends"`
	Lease      int64               `json:"lease_ms"`
	Step       int64               `json:"step"` // last step known applied
	Held       money.Nanos         `json:"held"`
	Free       money.Nanos         `json:"free"`
	DoneEst    money.Nanos         `json:"done_est"`
	DoneActual money.Nanos         `json:"done_actual"`
	DoneLedger []budget.LedgerLine `json:"done_ledger,omitempty"`
	Unsent     *journalStep        `json:"unsent,omitempty"`
}

// journalStep is a Step as the journal keeps it. Its lease end is not
// kept: a resent step renews the lease from the time it is applied.
type journalStep struct {
	N       int64               `json:"n"`
	Held    money.Nanos         `json:"held"`
	Add     money.Nanos         `json:"add"`
	Est     money.Nanos         `json:"est"`
	Actual  money.Nanos         `json:"actual"`
	Release money.Nanos         `json:"release"`
	Ledger  []budget.LedgerLine `json:"ledger,omitempty"`
}

// owes reports whether the grant has anything to send the store: a step to
// resend, settlements to charge, or an unused amount to return.
func (gr *grant) owes() bool {
	return !gr.broken && (gr.unsent != nil || gr.free > 0 || gr.settledUnsent())
}

// closeRecord returns what gr owes, for the journal.
func (gr *grant) closeRecord() Closing {
	gr.mu.Lock()
	defer gr.mu.Unlock()
	c := Closing{
		ID: gr.ID, Keys: gr.Keys, Ends: gr.Ends, Lease: gr.Lease.Milliseconds(),
		Step: gr.step, Held: gr.held, Free: gr.free, DoneEst: gr.doneEst, DoneActual: gr.doneActual,
	}
	if len(gr.doneLedger) > 0 {
		c.DoneLedger = budget.SortedLedger(gr.doneLedger)
	}
	for _, b := range gr.Budgets {
		c.Limits = append(c.Limits, int64(b.Limit))
		c.Enforce = append(c.Enforce, b.Enforce)
		c.Scopes = append(c.Scopes, b.Scope)
	}
	if st := gr.unsent; st != nil {
		c.Unsent = &journalStep{N: st.N, Held: st.Held, Add: st.Add, Est: st.Est, Actual: st.Actual, Release: st.Release, Ledger: st.Ledger}
	}
	return c
}

// grant rebuilds the grant c describes, holding nothing but what it owes.
func (c Closing) grant() (*grant, error) {
	n := len(c.Keys)
	if c.ID == "" || n == 0 || len(c.Limits) != n || len(c.Enforce) != n || len(c.Scopes) != n ||
		len(c.Ends) != n || c.Lease <= 0 || c.Step < 0 || c.Held < 0 || c.Free < 0 || c.DoneEst < 0 || c.DoneActual < 0 {
		return nil, fmt.Errorf("%w: journaled grant %q is malformed", budget.ErrInvalid, c.ID)
	}
	gr := &grant{
		Spec: Spec{ID: c.ID, Keys: c.Keys, KeysJoin: strings.Join(c.Keys, "\n"), Ends: c.Ends,
			Lease: time.Duration(c.Lease) * time.Millisecond},
		held: c.Held, free: c.Free, step: c.Step, doneEst: c.DoneEst, doneActual: c.DoneActual,
		drawn: map[string]money.Nanos{},
	}
	if len(c.DoneLedger) > 0 {
		gr.doneLedger = map[budget.LineKey]budget.LedgerLine{}
		budget.MergeLedger(gr.doneLedger, c.DoneLedger)
	}
	for i := range c.Keys {
		gr.Budgets = append(gr.Budgets, budget.Budget{Limit: money.Nanos(c.Limits[i]), Enforce: c.Enforce[i], Scope: c.Scopes[i]})
	}
	if u := c.Unsent; u != nil {
		if u.N != c.Step+1 {
			return nil, fmt.Errorf("%w: journaled grant %q resends step %d after step %d", budget.ErrInvalid, c.ID, u.N, c.Step)
		}
		gr.unsent = &Step{N: u.N, Held: u.Held, Add: u.Add, Est: u.Est, Actual: u.Actual, Release: u.Release, Ledger: u.Ledger}
	}
	return gr, nil
}

// Validate reports ErrInvalid for a Closing that cannot be applied: the
// journal checks it before writing it.
func (c Closing) Validate() error {
	_, err := c.grant()
	return err
}

// CloseJournaled applies a journaled Closing on b: it resends the step
// whose outcome was unknown, then charges the settlements made since and
// returns the unused amount. Replaying it again changes nothing: each step
// keeps its number, and the store answers a step it applied before with
// that first outcome. What requests still had drawn at shutdown stays held
// until the lease the last step set, then is charged as an orphan, as a
// hold would be. Both stores' CloseGrant call it.
func CloseJournaled(ctx context.Context, b Backend, c Closing) error {
	gr, err := c.grant()
	if err != nil {
		return err
	}
	clock := b.GrantEnv().Options.Clock
	o := Options{Lease: gr.Lease, Idle: time.Second}
	// An unsent step, then the closing one; a third would be a bug.
	for try := 0; try < 3; try++ {
		if !gr.owes() {
			return nil
		}
		now := clock()
		st, _ := gr.begin(now, 0, true, o)
		if st == nil {
			return fmt.Errorf("%w: journaled grant %q cannot step", budget.ErrInvalid, c.ID)
		}
		rep, err := b.StepGrant(ctx, &gr.Spec, st)
		gr.finish(st, rep, err, now, o)
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("%w: journaled grant %q still owes after its steps", budget.ErrInvalid, c.ID)
}
