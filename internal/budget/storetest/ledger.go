package storetest

import (
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
)

// LedgerLines splits actual into an input and an output line at hour.
func LedgerLines(hour time.Time, ws, model string, actual money.Nanos) []budget.LedgerLine {
	in := actual / 3
	return []budget.LedgerLine{
		{Hour: hour, Workspace: ws, Key: "k1", Model: model, Component: "input", Tokens: 100, Nanos: in},
		{Hour: hour, Workspace: ws, Key: "k1", Model: model, Component: "output", Tokens: 10, Nanos: actual - in},
	}
}

// LedgerSum adds up the tokens and the cost of ls.
func LedgerSum(t *testing.T, ls []budget.LedgerLine) (tokens int64, nanos money.Nanos) {
	t.Helper()
	for _, l := range ls {
		tokens += l.Tokens
		nanos += l.Nanos
	}
	return tokens, nanos
}
