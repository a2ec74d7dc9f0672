package pricing

import (
	"fmt"

	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// DefaultContextWindow is the context window of a model the price table
// gives none for: the largest any model has, so that a bound taken from it
// is never too small.
const DefaultContextWindow = 1_000_000

// ContextWindow returns the most prompt tokens one sampling iteration of
// model can have. For a model the table does not know it is the largest
// window of any known model when unknown models are charged as the dearest,
// and ok is false otherwise.
func (t *Table) ContextWindow(model string) (n int64, ok bool) {
	if m, found := t.byName[model]; found {
		return m.contextWindow, true
	}
	if t.unknown != policy.UnknownChargeMax || len(t.models) == 0 {
		return 0, false
	}
	for _, m := range t.models {
		n = max(n, m.contextWindow)
	}
	return n, true
}

// promptBound is the estimate's upper bound of the prompt in tokens. A
// request whose body does not bound its prompt (content it only points at,
// media whose bytes do not bound their tokens) is bounded by the model's
// context window, which the API enforces on every prompt; otherwise a token
// is at least one byte of the body, plus the fixed overhead the API adds
// and the documented overhead of the tools the request declares.
func promptBound(m *model, r Request) (int64, error) {
	if r.ContextBound {
		return m.contextWindow, nil
	}
	if r.ExtraPromptTokens < 0 || r.ExtraPromptTokens > MaxCount {
		return 0, fmt.Errorf("%w: extra prompt tokens %d for %q", ErrOutOfRange, r.ExtraPromptTokens, r.Model)
	}
	return r.PromptBytes + PromptOverheadTokens + r.ExtraPromptTokens, nil
}
