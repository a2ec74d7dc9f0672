package budget

import (
	"sort"
	"strings"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// DefaultLedgerRetention is how long the spend ledger keeps an hour.
const DefaultLedgerRetention = 400 * 24 * time.Hour

// LedgerLine is metered spend of one cost component: one request's part
// when handed to Settle, or the sum over an hour when read back. The
// ledger is what reconciliation compares with Anthropic's own usage and
// cost reports, so it is written by the settlement that charges budgets,
// in the same atomic step: it is charged exactly when, and as often as,
// the budgets are.
type LedgerLine struct {
	Hour      time.Time   `json:"hour"` // UTC, truncated to the hour
	Workspace string      `json:"workspace"`
	Key       string      `json:"key"` // the workspace key's name in the policy
	Model     string      `json:"model"`
	Component string      `json:"component"` // pricing component, or "estimate"
	Tokens    int64       `json:"tokens"`    // web_search: requests
	Nanos     money.Nanos `json:"nanos"`
}

// LedgerSep separates the parts of a ledger line's name. Parts never
// contain it (LedgerField replaces it), so a name splits back
// unambiguously.
const LedgerSep = "|"

// LedgerHourFormat names an hour of the ledger in store keys: "2026120719".
const LedgerHourFormat = "2006010215"

func ledgerPart(s string) string {
	if strings.ContainsAny(s, LedgerSep+"\n") {
		s = strings.NewReplacer(LedgerSep, "_", "\n", "_").Replace(s)
	}
	return s
}

// LedgerField is the line's name within its hour, as every store keys it:
// workspace, key, model and component.
func LedgerField(l LedgerLine) string {
	return ledgerPart(l.Workspace) + LedgerSep + ledgerPart(l.Key) + LedgerSep +
		ledgerPart(l.Model) + LedgerSep + ledgerPart(l.Component)
}

// ParseLedgerField fills the names of l from a name LedgerField wrote.
func ParseLedgerField(f string, l *LedgerLine) bool {
	p := strings.Split(f, LedgerSep)
	if len(p) != 4 {
		return false
	}
	l.Workspace, l.Key, l.Model, l.Component = p[0], p[1], p[2], p[3]
	return true
}

// LedgerKey is a ledger line's hour and name: lines with the same key are
// summed.
type LedgerKey struct{ Hour, Field string }

// LineKey identifies a ledger line by its hour and names, for summing
// lines in memory: built without the strings the stores key lines by,
// since a grant sums the lines of every request it settles. Lines whose
// names differ only where LedgerField replaces a character stay apart
// here and are summed by the store, under one name.
type LineKey struct {
	Hour                             int64 // Unix seconds, truncated to the hour
	Workspace, Key, Model, Component string
}

// MergeLedger adds lines into acc, summing lines of the same hour and
// names.
func MergeLedger(acc map[LineKey]LedgerLine, lines []LedgerLine) {
	for _, l := range lines {
		hour := l.Hour.UTC().Truncate(time.Hour)
		k := LineKey{Hour: hour.Unix(), Workspace: l.Workspace, Key: l.Key, Model: l.Model, Component: l.Component}
		a, ok := acc[k]
		if !ok {
			a = l
			a.Hour = hour
			a.Tokens, a.Nanos = 0, 0
		}
		a.Tokens += l.Tokens
		a.Nanos += l.Nanos
		acc[k] = a
	}
}

// SortedLedger returns acc's lines ordered by hour then names.
func SortedLedger[K comparable](acc map[K]LedgerLine) []LedgerLine {
	out := make([]LedgerLine, 0, len(acc))
	for _, l := range acc {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Hour.Equal(b.Hour) {
			return a.Hour.Before(b.Hour)
		}
		return LedgerField(a) < LedgerField(b)
	})
	return out
}

// MaxLedgerHours bounds one read of the ledger: a little over a year of
// hours, the default retention.
const MaxLedgerHours = 24 * 400

// LedgerHours lists the UTC hours in [from, to).
func LedgerHours(from, to time.Time) []time.Time {
	from = from.UTC().Truncate(time.Hour)
	var out []time.Time
	for h := from; h.Before(to); h = h.Add(time.Hour) {
		out = append(out, h)
	}
	return out
}
