package budget

import (
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
