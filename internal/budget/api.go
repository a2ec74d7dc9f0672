package budget

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// Scope is who a budget belongs to.
type Scope string

// Scopes, in the order a request's budgets are listed.
const (
	ScopeService   Scope = "service"
	ScopeTeam      Scope = "team"
	ScopeWorkspace Scope = "workspace"
	// ScopePrincipal budgets belong to one caller inside a service (a
	// developer, an end user, a session); they are named
	// "<service>/<source>/<value>" and created by the store on first sight.
	ScopePrincipal Scope = "principal"
)

// Period is how often a budget's window resets.
type Period string

// Periods. Windows start at 00:00 in the budget's time zone (UTC unless the
// policy sets one); weekly windows start on Monday (ISO 8601).
const (
	Daily   Period = "daily"
	Weekly  Period = "weekly"
	Monthly Period = "monthly"
	Total   Period = "total"
)

// Budget is one cap on one owner.
type Budget struct {
	Scope    Scope
	Name     string // the owner's name in the policy
	ID       string // unique within the owner; defaults to the period
	Period   Period
	Limit    money.Nanos
	Enforce  bool           // false: a dry run, counted and reported, never refuses
	Location *time.Location // nil means UTC
	AlertAt  []float64      // fractions of Limit that notify when crossed
}

// Window returns the window of b that contains t. For Total, start is the
// zero time and end is the zero time (never resets).
func (b Budget) Window(t time.Time) (start, end time.Time) {
	loc := b.Location
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	y, m, d := t.Date()
	switch b.Period {
	case Daily:
		start = time.Date(y, m, d, 0, 0, 0, 0, loc)
		end = start.AddDate(0, 0, 1)
	case Weekly:
		off := (int(t.Weekday()) + 6) % 7 // days since Monday
		start = time.Date(y, m, d-off, 0, 0, 0, 0, loc)
		end = start.AddDate(0, 0, 7)
	case Monthly:
		start = time.Date(y, m, 1, 0, 0, 0, 0, loc)
		end = start.AddDate(0, 1, 0)
	default:
		return time.Time{}, time.Time{}
	}
	return start, end
}

// Key names one window of one budget. It is stable across replicas and
// restarts and carries no secrets: "service:recommendation:daily:20261127".
func (b Budget) Key(t time.Time) string {
	start, _ := b.Window(t)
	return b.WindowKey(start)
}

// WindowKey is Key for the window that starts at start (as Window
// returns it), built in one allocation.
func (b Budget) WindowKey(start time.Time) string {
	return string(b.AppendWindowKey(make([]byte, 0, len(b.Scope)+len(b.Name)+len(b.ID)+11), start))
}

// AppendWindowKey appends WindowKey(start) to k.
func (b Budget) AppendWindowKey(k []byte, start time.Time) []byte {
	k = append(k, b.Scope...)
	k = append(k, ':')
	k = append(k, b.Name...)
	k = append(k, ':')
	k = append(k, b.ID...)
	k = append(k, ':')
	if start.IsZero() {
		return append(k, "all"...)
	}
	return start.AppendFormat(k, "20060102")
}

// OwnerOf returns the owner name in a window key
// "<scope>:<name>:<id>:<start>": names may hold colons (principal values),
// IDs and starts never do.
func OwnerOf(window string) (string, bool) {
	i := strings.LastIndexByte(window, ':')
	if i < 0 {
		return "", false
	}
	j := strings.LastIndexByte(window[:i], ':')
	if j < 0 {
		return "", false
	}
	_, name, ok := strings.Cut(window[:j], ":")
	return name, ok
}

// Label is how a budget is named to people: "service recommendation monthly".
func (b Budget) Label() string {
	return fmt.Sprintf("%s %q budget %q (%s)", b.Scope, b.Name, b.ID, b.Period)
}

// Hold asks for an amount to be reserved against every budget in Budgets.
type Hold struct {
	RequestID string // unique per request; settlement is idempotent on it
	Budgets   []Budget
	Amount    money.Nanos
	TTL       time.Duration
	// Fit, when set, places a hold that does not fit at Amount at the
	// largest amount Fit allows that does (see Fit).
	Fit Fit
}

// Reservation is an admitted hold. It is plain data so that a settlement
// that cannot reach the store can be journaled and replayed later.
type Reservation struct {
	RequestID string      `json:"request_id"`
	Keys      []string    `json:"keys"`   // Budget.Key of each budget, in Hold order
	Enforced  []bool      `json:"-"`      // parallel to Keys
	Amount    money.Nanos `json:"amount"` // the estimate held
	// Fitted is the number of Fit units the hold was placed for when it
	// was placed below the Hold's Amount (Amount is then Fit's amount for
	// them), and 0 when it was placed at the Hold's Amount.
	Fitted int64 `json:"-"`
	// Remaining is what the tightest enforced budget had left after this
	// hold was placed; HasRemaining is false when no budget is enforced.
	Remaining    money.Nanos `json:"-"`
	HasRemaining bool        `json:"-"`
	// Ledger is the settled cost broken down for the spend ledger; set it
	// before Settle. When present it must add up to the actual cost.
	Ledger []LedgerLine `json:"ledger,omitempty"`
	// Draw is the admission grant this request drew on, set by the store
	// that admitted it from a grant; nil for a hold of its own. Never
	// journaled: a draw is settled in memory by that store.
	Draw Draw `json:"-"`
}

// Draw is a grant a reservation drew on. Only the store that set it can
// settle it; to everyone else it says only that settlement stays in memory.
type Draw interface {
	// SettlesInMemory is a marker: a Draw settles without a store call.
	SettlesInMemory()
}

// InMemory reports whether settling r touches only memory (a draw on a
// grant): callers may settle it inline instead of in the background.
func (r Reservation) InMemory() bool { return r.Draw != nil }

// Renewed reports whether the store keeps r's lease alive by itself, so a
// caller holding it through a long response need not call Extend: a draw
// lives as long as its grant, whose lease the grant's steps renew.
func (r Reservation) Renewed() bool { return r.Draw != nil }

// Status is one budget's current window as the store sees it.
type Status struct {
	Budget      Budget
	WindowStart time.Time // zero for Total
	ResetsAt    time.Time // zero for Total
	Spent       money.Nanos
	Reserved    money.Nanos // live holds
}

// Remaining is the limit less spend and live holds (never below zero).
func (s Status) Remaining() money.Nanos {
	r := s.Budget.Limit - s.Spent - s.Reserved
	if r < 0 {
		return 0
	}
	return r
}

// Sentinel errors. Match them with errors.Is.
var (
	// ErrDuplicate reports a Reserve with a request ID whose hold was already
	// settled or has expired: request IDs must be unique per request, and
	// placing a second hold under a settled ID could never be settled.
	ErrDuplicate = errors.New("budget: request ID already used")

	// ErrInvalid reports a call or option the store cannot act on, such as a
	// hold without a request ID. It is a caller bug, never a store failure.
	ErrInvalid = errors.New("budget: invalid argument")

	// ErrOverBudget is wrapped by *ExceededError.
	ErrOverBudget = errors.New("budget: over budget")
	// ErrUnavailable wraps every failure to reach or use the store.
	ErrUnavailable = errors.New("budget: store unavailable")
	// ErrStoreReset reports that the store lost its data (e.g. Redis
	// restarted without persistence): caps can no longer be seen, so
	// admission fails closed until an operator re-initialises it.
	ErrStoreReset = errors.New("budget: store lost its data")
)

// ExceededError names the first enforced budget a hold did not fit.
type ExceededError struct {
	Budget   Budget
	ResetsAt time.Time // zero for Total
	Spent    money.Nanos
	Reserved money.Nanos
}

func (e *ExceededError) Error() string {
	return fmt.Sprintf("budget: %s limit %s USD reached", e.Budget.Label(), e.Budget.Limit)
}

// Unwrap makes errors.Is(err, ErrOverBudget) hold.
func (e *ExceededError) Unwrap() error { return ErrOverBudget }

// Store is what both stores implement. Every method is bounded by ctx.
type Store interface {
	// Reserve places h against all its budgets at once, or none: it fails
	// with *ExceededError if any enforced budget would exceed its limit
	// (spent + live holds + amount > limit). With h.Fit it places the
	// largest fitted amount that fits every enforced budget instead, and
	// fails only if that is under h.Fit.Min units.
	Reserve(ctx context.Context, h Hold) (Reservation, error)
	// Extend renews a live hold's lease (long streams).
	Extend(ctx context.Context, r Reservation, ttl time.Duration) error
	// Settle replaces the hold with the actual cost. It is idempotent per
	// RequestID, and still charges when the hold has expired (correcting
	// an orphan charge) or was never seen (a journaled replay).
	Settle(ctx context.Context, r Reservation, actual money.Nanos) error
	// Status reads the current window of each budget.
	Status(ctx context.Context, budgets []Budget) ([]Status, error)
	// Adjust credits (negative) or debits (positive) the current window.
	Adjust(ctx context.Context, b Budget, delta money.Nanos) error
	// Ping reports whether the store is reachable and has its data.
	Ping(ctx context.Context) error
	Close() error
}
