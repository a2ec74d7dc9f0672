// Package reconcile compares the gateway's spend ledger with Anthropic's
// own usage and cost reports and classifies every difference:
//
//   - unmetered: Anthropic saw spend the gateway never forwarded, on one
//     of the gateway's keys (a leaked or bypassing key) or in a workspace
//     the gateway manages without any key of its own (Console, Workbench,
//     a key the policy does not list);
//   - unseen_by_anthropic: the gateway metered tokens Anthropic did not
//     report (a metering bug, or a report that is late);
//   - price_drift: the tokens match but Anthropic billed them differently
//     (an outdated price table, or a negotiated discount);
//   - not_metered_by_design: spend the gateway cannot see in responses
//     (code-execution container hours) or that Anthropic prices outside
//     the cost report (Priority Tier);
//   - unexplained: what is left of a day's dollar difference.
//
// Tokens are compared per hour, key, model and cost component and judged
// per day; dollars per day and workspace. Only workspaces with an
// anthropic_id are compared.
package reconcile

import (
	"math/big"
	"strconv"
	"strings"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// Kinds of findings.
const (
	Unmetered          = "unmetered"
	UnseenByAnthropic  = "unseen_by_anthropic"
	PriceDrift         = "price_drift"
	NotMeteredByDesign = "not_metered_by_design"
	Unexplained        = "unexplained"
)

// Kinds lists every kind, for metrics.
var Kinds = []string{Unmetered, UnseenByAnthropic, PriceDrift, NotMeteredByDesign, Unexplained}

// USD is an exact dollar amount that marshals as a decimal string.
type USD money.Nanos

// MarshalText writes the exact decimal ("12.345678901").
func (u USD) MarshalText() ([]byte, error) { return []byte(money.Nanos(u).String()), nil }

// UnmarshalText reads it back.
func (u *USD) UnmarshalText(b []byte) error {
	n, err := money.Parse(string(b))
	*u = USD(n)
	return err
}

func (u USD) String() string { return money.Nanos(u).String() }

// Report is the outcome of one reconciliation.
type Report struct {
	From     string    `json:"from"` // YYYY-MM-DD, inclusive
	To       string    `json:"to"`   // YYYY-MM-DD, inclusive
	Days     []Day     `json:"days"`
	Findings []Finding `json:"findings"`
}

// Day is one workspace's day.
type Day struct {
	Date         string `json:"date"`
	Workspace    string `json:"workspace"`
	GatewayUSD   USD    `json:"gateway_usd"`
	AnthropicUSD USD    `json:"anthropic_usd"`
	DriftUSD     USD    `json:"drift_usd"` // anthropic - gateway
	// Final reports whether the day is closed and Anthropic's reports for
	// it are settled; figures of other days may still change.
	Final bool `json:"final"`
}

// Finding is one classified difference.
type Finding struct {
	Kind         string `json:"kind"`
	Date         string `json:"date"`
	Workspace    string `json:"workspace"`
	Key          string `json:"key"`   // the key's name in the policy, its Anthropic ID, or "" (no key)
	Model        string `json:"model"` // "" when not per model
	GatewayUSD   USD    `json:"gateway_usd"`
	AnthropicUSD USD    `json:"anthropic_usd"`
	DriftUSD     USD    `json:"drift_usd"`
	// Discount, on a price drift finding when every price drift of the
	// report is off by one factor, is the pricing.discount that would
	// explain it.
	Discount string `json:"discount,omitempty"`

	// Exceeds reports a drift beyond the policy's tolerance.
	Exceeds bool `json:"-"`
	// Final is the day's.
	Final bool `json:"-"`
	// Hours lists the UTC hours whose token counts differ (token kinds).
	Hours []string `json:"-"`
}

// Counts reports whether f makes the run fail (exit status 3, alerts):
// it exceeds the tolerance on a closed day, or it is unmetered spend,
// which may be a leaked key and does not wait for the day to close.
// Spend not metered by design is expected and only reported.
func (f Finding) Counts() bool {
	return f.Exceeds && f.Kind != NotMeteredByDesign && (f.Final || f.Kind == Unmetered)
}

// Failed reports whether any finding counts.
func (r Report) Failed() bool {
	for _, f := range r.Findings {
		if f.Counts() {
			return true
		}
	}
	return false
}

// ratio formats a/b with four decimals (a discount factor).
func ratio(a, b money.Nanos) string {
	if b == 0 {
		return ""
	}
	// a/b rounded to 1e-4, in integers: (2·a·1e4 + b) / (2b).
	num := new(big.Int).Mul(big.NewInt(int64(a)), big.NewInt(20_000))
	num.Add(num, big.NewInt(int64(b)))
	q := num.Quo(num, big.NewInt(2*int64(b))).Int64()
	s := strconv.FormatInt(q/10_000, 10) + "." + leftPad(strconv.FormatInt(q%10_000, 10), 4)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

func leftPad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s
}
