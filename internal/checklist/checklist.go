// Package checklist evaluates the access-control checklist (separate
// environments, one key per service, spending limits, alerts, rotation,
// offboarding, audit, failure modes) against a compiled policy and, when
// given, the live state the gateway keeps in its store. The same evaluation
// backs the checklist command, the admin endpoint and the metrics.
package checklist

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/trail"
)

// Status is an item's verdict. FAIL is a gap to close; WARN is something to
// look at or accept on purpose.
type Status string

// Statuses, from best to worst.
const (
	Pass Status = "PASS"
	Warn Status = "WARN"
	Fail Status = "FAIL"
)

func worse(a, b Status) Status {
	if a == Fail || b == Fail {
		return Fail
	}
	if a == Warn || b == Warn {
		return Warn
	}
	return Pass
}

// Headings of the checklist, in order.
const (
	HeadEnvironments = "environments"
	HeadKeys         = "keys per service"
	HeadLimits       = "spending limits"
	HeadAlerts       = "alerts"
	HeadRotation     = "rotation"
	HeadOffboarding  = "offboarding"
	HeadAudit        = "audit"
	HeadFailureModes = "failure modes"
)

// Item IDs. They are metric label values, so the set is fixed.
const (
	ItemWorkspaceEnvironment = "workspace_environment"
	ItemWorkspaceKeys        = "workspace_keys"
	ItemKeyNames             = "key_names"
	ItemServiceTokens        = "service_tokens"
	ItemServiceBudgets       = "service_budgets"
	ItemTeamAlerts           = "team_alerts"
	ItemKeyRotation          = "key_rotation"
	ItemUnusedTokens         = "unused_tokens"
	ItemServiceOwners        = "service_owners"
	ItemAdminTokensNamed     = "admin_tokens_named"
	ItemAdminTokenCount      = "admin_token_count"
	ItemAdminListener        = "admin_listener"
	ItemBudgetAdjustments    = "budget_adjustments"
	ItemStoreFailureAllow    = "store_failure_allow"
	ItemUnknownModelMax      = "unknown_model_charge_max"
)

// Items lists every item ID in report order.
func Items() []string {
	return []string{
		ItemWorkspaceEnvironment, ItemWorkspaceKeys,
		ItemKeyNames, ItemServiceTokens,
		ItemServiceBudgets,
		ItemTeamAlerts,
		ItemKeyRotation,
		ItemUnusedTokens, ItemServiceOwners,
		ItemAdminTokensNamed, ItemAdminTokenCount, ItemAdminListener, ItemBudgetAdjustments,
		ItemStoreFailureAllow, ItemUnknownModelMax,
	}
}

// Thresholds the items apply. Rotation matches the CladeUpstreamKeyOld
// alert (90 days), with a warning period before it.
const (
	RotationWarnDays  = 75
	RotationFailDays  = 90
	UnusedTokenDays   = 30
	AdjustmentDays    = 30
	DefaultAdminLimit = 4
)

// Item is one line of the checklist.
type Item struct {
	Heading string   `json:"heading"`
	ID      string   `json:"item"`
	Status  Status   `json:"status"`
	Reason  string   `json:"reason"`
	Action  string   `json:"action,omitempty"` // what to do; empty on PASS
	Details []string `json:"details,omitempty"`
}

// Report is one evaluation.
type Report struct {
	At      time.Time `json:"at"`
	Live    bool      `json:"live"` // the store was read
	Items   []Item    `json:"items"`
	Summary Summary   `json:"summary"`
}

// Summary counts items by status.
type Summary struct {
	Pass int `json:"pass"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
}

// Failed reports whether any item fails.
func (r *Report) Failed() bool { return r.Summary.Fail > 0 }

// Live is what the gateway keeps in its store; trail.Reader implements it.
type Live interface {
	LastUsed(ctx context.Context) (used map[[sha256.Size]byte]time.Time, since time.Time, err error)
	Adjustments(ctx context.Context, since time.Time) ([]trail.Adjustment, error)
}

// Options are the facts outside the policy.
type Options struct {
	Now func() time.Time
	// Live is nil when only the policy is checked; its items then warn
	// that they were not checked.
	Live Live
	// AdminTokenLimit: the policy must list fewer admin tokens than this.
	// Zero means DefaultAdminLimit.
	AdminTokenLimit int
	// AdminListen is the admin listener's address (CLADE_ADMIN_LISTEN).
	AdminListen string
}

// Evaluate runs every item. It never fails: a live item whose store cannot
// be read warns that it was not checked.
func Evaluate(ctx context.Context, p *policy.Policy, o Options) *Report {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AdminTokenLimit <= 0 {
		o.AdminTokenLimit = DefaultAdminLimit
	}
	now := o.Now()
	e := &eval{p: p, o: o, now: now}
	r := &Report{At: now.UTC(), Live: o.Live != nil}
	for _, it := range []Item{
		e.workspaceEnvironment(), e.workspaceKeys(),
		e.keyNames(), e.serviceTokens(),
		e.serviceBudgets(),
		e.teamAlerts(),
		e.keyRotation(),
		e.unusedTokens(ctx), e.serviceOwners(),
		e.adminTokensNamed(), e.adminTokenCount(), e.adminListener(), e.budgetAdjustments(ctx),
		e.storeFailureAllow(), e.unknownModelMax(),
	} {
		switch it.Status {
		case Pass:
			r.Summary.Pass++
			it.Action = ""
		case Warn:
			r.Summary.Warn++
		case Fail:
			r.Summary.Fail++
		}
		r.Items = append(r.Items, it)
	}
	return r
}

type eval struct {
	p   *policy.Policy
	o   Options
	now time.Time
}

// findings collects what one item found: a short subject per finding for
// the line, and a full sentence for the details.
type findings struct {
	status       Status
	fails, warns []string
	details      []string
}

func (f *findings) add(s Status, subject, format string, args ...any) {
	f.status = worse(f.status, s)
	if s == Fail {
		f.fails = append(f.fails, subject)
	} else {
		f.warns = append(f.warns, subject)
	}
	f.details = append(f.details, fmt.Sprintf("%s: %s", s, fmt.Sprintf(format, args...)))
}

// reason names what failed, then what warned, each after its message.
func (f *findings) reason(failMsg, warnMsg string) string {
	var parts []string
	if len(f.fails) > 0 {
		parts = append(parts, failMsg+": "+list(f.fails))
	}
	if len(f.warns) > 0 {
		parts = append(parts, warnMsg+": "+list(f.warns))
	}
	return strings.Join(parts, "; ")
}

// item builds the line: pass when nothing was found, else reason and
// action.
func (f *findings) item(head, id, pass, reason, action string) Item {
	if f.status == "" || f.status == Pass {
		return Item{Heading: head, ID: id, Status: Pass, Reason: pass, Details: f.details}
	}
	return Item{Heading: head, ID: id, Status: f.status, Reason: reason, Action: action, Details: f.details}
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// list names up to five things, then how many more.
func list(names []string) string {
	if len(names) <= 5 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:5], ", "), len(names)-5)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
