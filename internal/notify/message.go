package notify

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
)

// reached reports whether spent >= limit × th, decided exactly: th is taken
// by its shortest decimal form (0.8, not 0.8000000000000000444), so a budget
// at exactly 80% notifies at 0.8 and one nano-dollar less does not.
func reached(spent, limit money.Nanos, th float64) bool {
	if limit <= 0 || spent <= 0 {
		return false
	}
	frac, err := money.FromFloatExact(th) // th as nano-units of a fraction
	if err != nil || frac <= 0 {
		return false
	}
	// spent × 1e9 >= limit × frac, in 128-bit-safe arithmetic.
	lhs := new(big.Int).Mul(big.NewInt(int64(spent)), big.NewInt(int64(money.PerUSD)))
	rhs := new(big.Int).Mul(big.NewInt(int64(limit)), big.NewInt(int64(frac)))
	return lhs.Cmp(rhs) >= 0
}

// event is one threshold crossing, formatted per webhook.
type event struct {
	status    budget.Status
	threshold float64
}

func newEvent(st budget.Status, th float64) event { return event{status: st, threshold: th} }

// exhausted reports whether the event announces a used-up enforced budget.
func (e event) exhausted() bool { return e.threshold >= Exhausted && e.status.Budget.Enforce }

// jsonPayload is the `format: json` body. Amounts are exact decimal strings
// so receivers never see float rounding; times are RFC 3339 and omitted for
// budgets that never reset.
type jsonPayload struct {
	Event       string      `json:"event"` // budget_threshold | budget_exhausted
	Scope       string      `json:"scope"`
	Name        string      `json:"name"`
	ID          string      `json:"id"`
	Period      string      `json:"period"`
	Enforced    bool        `json:"enforced"`
	Threshold   json.Number `json:"threshold"`
	SpentUSD    string      `json:"spent_usd"`
	LimitUSD    string      `json:"limit_usd"`
	WindowStart string      `json:"window_start,omitempty"`
	ResetsAt    string      `json:"resets_at,omitempty"`
	Text        string      `json:"text"`
}

// body renders the event for a webhook format: "json", or Slack-compatible
// {"text": ...} for anything else (the policy validates the value).
func (e event) body(format string) ([]byte, error) {
	if strings.EqualFold(format, "json") {
		st := e.status
		name := "budget_threshold"
		if e.exhausted() {
			name = "budget_exhausted"
		}
		return json.Marshal(jsonPayload{
			Event:       name,
			Scope:       string(st.Budget.Scope),
			Name:        st.Budget.Name,
			ID:          st.Budget.ID,
			Period:      string(st.Budget.Period),
			Enforced:    st.Budget.Enforce,
			Threshold:   json.Number(formatThreshold(e.threshold)),
			SpentUSD:    st.Spent.String(),
			LimitUSD:    st.Budget.Limit.String(),
			WindowStart: rfc3339(st.WindowStart),
			ResetsAt:    rfc3339(st.ResetsAt),
			Text:        e.text(),
		})
	}
	return json.Marshal(struct {
		Text string `json:"text"`
	}{e.text()})
}

// text is the one-line human message, e.g.
// `Budget alert: team "search" budget "monthly" (monthly) has spent 4000 USD of 5000 USD (80.0%), past its 80% alert threshold. Resets 2026-12-01T00:00:00Z.`
func (e event) text() string {
	st := e.status
	b := st.Budget
	var sb strings.Builder
	if e.exhausted() {
		sb.WriteString("Budget exhausted: ")
	} else {
		sb.WriteString("Budget alert: ")
	}
	fmt.Fprintf(&sb, "%s %q budget %q (%s) has spent %s USD of %s USD (%.1f%%)",
		b.Scope, b.Name, b.ID, b.Period, st.Spent, b.Limit, 100*st.Spent.Float()/b.Limit.Float())
	if e.exhausted() {
		sb.WriteString("; requests are refused until it resets")
	} else {
		fmt.Fprintf(&sb, ", past its %s%% alert threshold", percent(e.threshold))
	}
	if !b.Enforce {
		sb.WriteString(" (dry run: not enforced)")
	}
	sb.WriteString(".")
	if !st.ResetsAt.IsZero() {
		fmt.Fprintf(&sb, " Resets %s.", rfc3339(st.ResetsAt))
	}
	return sb.String()
}

// percent shows a fraction as a percentage without float noise (0.8 → "80").
func percent(th float64) string {
	n, err := money.FromFloatExact(th)
	if err != nil {
		return fmt.Sprintf("%g", th*100)
	}
	return (n * 100).String()
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339)
}
