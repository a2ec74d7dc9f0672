package pricing

import (
	"fmt"
	"math"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// PromptOverheadTokens is added to a request's byte count in Estimate for
// prompt text the API adds itself (tool-use system prompts and the like).
const PromptOverheadTokens = 2048

// Request is what admission knows about a request before it is sent.
type Request struct {
	Model          string
	PromptBytes    int64 // size of the request body
	MaxTokens      int64
	InferenceGeoUS bool // the request or the workspace default asks for "us"
	Fast           bool
	Batch          bool
	ServerTools    bool        // server tools declared or files referenced
	Allowance      money.Nanos // added when ServerTools
	// ContextBound says the body does not bound the prompt (content it
	// only points at, media whose bytes do not bound its tokens): the
	// prompt is bounded by the model's context window instead.
	ContextBound bool
	// ExtraPromptTokens is the documented prompt overhead of the tools the
	// request declares (computer use, bash, text editor), added to the
	// bound taken from PromptBytes.
	ExtraPromptTokens int64
}

// Estimate returns an upper bound of the cost of r at time at; the package
// documentation gives the rule.
func (t *Table) Estimate(r Request, at time.Time) (money.Nanos, error) {
	if r.PromptBytes < 0 || r.PromptBytes > MaxCount-PromptOverheadTokens ||
		r.MaxTokens < 0 || r.MaxTokens > MaxCount || r.Allowance < 0 {
		return 0, fmt.Errorf("%w: request for %q (prompt %d bytes, max_tokens %d, allowance %s)",
			ErrOutOfRange, r.Model, r.PromptBytes, r.MaxTokens, r.Allowance)
	}
	if m, ok := t.byName[r.Model]; ok {
		return t.estimate(m, r, at)
	}
	if t.unknown != policy.UnknownChargeMax || len(t.models) == 0 {
		return 0, fmt.Errorf("%w: %q", ErrUnknownModel, r.Model)
	}
	var best money.Nanos
	for _, m := range t.models {
		n, err := t.estimate(m, r, at)
		if err != nil {
			return 0, err
		}
		best = max(best, n)
	}
	return best, nil
}

func (t *Table) estimate(m *model, r Request, at time.Time) (money.Nanos, error) {
	prompt, err := promptBound(m, r)
	if err != nil {
		return 0, err
	}
	p := m.at(at)
	// The response decides the tier, so where the request makes a dearer
	// tier possible, take each rate at its worst: an operator's override can
	// put standard rates above the sheet's tier rates.
	rt := p.std
	if r.Fast && p.hasFast {
		rt = maxRates(rt, p.fast)
	} else if m.longOver > 0 && prompt > m.longOver {
		rt = maxRates(rt, m.long)
	}
	in := max(rt[Input], rt[CacheWrite5m], rt[CacheWrite1h], rt[CacheRead])
	num := multiplier(m, r.InferenceGeoUS, r.Batch)

	sum, ok := mul64(uint64(prompt), in).add(mul64(uint64(r.MaxTokens), rt[Output]))
	if ok {
		sum, ok = sum.mulSmall(num)
	}
	var n int64
	if ok {
		n, ok = sum.divUp(uint64(denom))
	}
	if ok && r.ServerTools {
		ok = n <= math.MaxInt64-int64(r.Allowance)
		n += int64(r.Allowance)
	}
	if !ok {
		return 0, fmt.Errorf("%w: estimate of %q", ErrOutOfRange, m.id)
	}
	return money.Nanos(n), nil
}

func maxRates(a, b rates) rates {
	for k := range a {
		a[k] = max(a[k], b[k])
	}
	return a
}
