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
	// Cache is the dearest input-side rate the request can incur; the zero
	// value, CacheAny, is the 1-hour cache write.
	Cache PromptCache
	// PromptTokens, when positive, bounds the prompt's size from a token
	// count (count_tokens); the bound is the smaller of it and
	// PromptBytes + PromptOverheadTokens.
	PromptTokens int64
}

// PromptCache says which cache writes a request can cause, and so the
// dearest rate its prompt tokens can be billed at.
type PromptCache uint8

// PromptCache values.
const (
	// CacheAny: the request may write its prompt to the 1-hour cache.
	CacheAny PromptCache = iota
	// CacheNone: no cache_control anywhere, so nothing can be written to
	// the cache; reads and uncached input are at most the input rate.
	CacheNone
	// Cache5m: cache_control without a 1-hour ttl; writes are 5-minute.
	Cache5m
)

// Estimate returns an upper bound of the cost of r at time at; the package
// documentation gives the rule.
func (t *Table) Estimate(r Request, at time.Time) (money.Nanos, error) {
	if r.PromptBytes < 0 || r.PromptBytes > MaxCount-PromptOverheadTokens || r.PromptTokens < 0 || r.PromptTokens > MaxCount ||
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
	prompt, in, out, num, err := rateFor(m, r, at)
	if err != nil {
		return 0, err
	}
	sum, ok := mul64(uint64(prompt), in).add(mul64(uint64(r.MaxTokens), out))
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

// rateFor returns the prompt token bound of r on m, the rates a prompt and
// an output token are priced at, and the multiplier numerator over denom.
func rateFor(m *model, r Request, at time.Time) (prompt int64, in, out, num uint64, err error) {
	prompt, err = promptBound(m, r)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	// A count_tokens answer bounds a prompt the body bounds; content the
	// body only points at may change between the count and the request.
	if c := r.PromptTokens + r.ExtraPromptTokens; r.PromptTokens > 0 && !r.ContextBound && c < prompt {
		prompt = c
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
	return prompt, inputRate(rt, r.Cache), rt[Output], multiplier(m, r.InferenceGeoUS, r.Batch), nil
}

// Split is an estimate in two parts, for fitting max_tokens to a budget:
// for every k, Fixed + k×PerToken is at least the Estimate of the request
// with max_tokens k.
type Split struct {
	Fixed    money.Nanos // the estimate with max_tokens 0: prompt, allowance
	PerToken money.Nanos // one output token, rounded up
}

// For returns the bound Fixed + k×PerToken, and false if it overflows.
func (s Split) For(k int64) (money.Nanos, bool) {
	if k < 0 || k > MaxCount || (s.PerToken > 0 && k > (math.MaxInt64-int64(s.Fixed))/int64(s.PerToken)) {
		return 0, false
	}
	return s.Fixed + money.Nanos(k)*s.PerToken, true
}

// EstimateSplit returns r's estimate split into a fixed part and a price
// per output token (r.MaxTokens is ignored). Each part is rounded up on
// its own, and for an unknown model under charge_max each is the dearest
// over the known models, so the split is never below Estimate.
func (t *Table) EstimateSplit(r Request, at time.Time) (Split, error) {
	r.MaxTokens = 0
	if m, ok := t.byName[r.Model]; ok {
		return t.split(m, r, at)
	}
	if _, err := t.Estimate(r, at); err != nil {
		return Split{}, err
	}
	var best Split
	for _, m := range t.models {
		s, err := t.split(m, r, at)
		if err != nil {
			return Split{}, err
		}
		best.Fixed, best.PerToken = max(best.Fixed, s.Fixed), max(best.PerToken, s.PerToken)
	}
	return best, nil
}

func (t *Table) split(m *model, r Request, at time.Time) (Split, error) {
	fixed, err := t.estimate(m, r, at)
	if err != nil {
		return Split{}, err
	}
	_, _, out, num, err := rateFor(m, r, at)
	if err != nil {
		return Split{}, err
	}
	per, ok := mul64(out, num).divUp(uint64(denom))
	if !ok {
		return Split{}, fmt.Errorf("%w: output price of %q", ErrOutOfRange, m.id)
	}
	return Split{Fixed: fixed, PerToken: money.Nanos(per)}, nil
}

// inputRate is the dearest rate a prompt token of a request with cache c
// can be billed at.
func inputRate(rt rates, c PromptCache) uint64 {
	switch c {
	case CacheNone:
		return max(rt[Input], rt[CacheRead])
	case Cache5m:
		return max(rt[Input], rt[CacheWrite5m], rt[CacheRead])
	}
	return max(rt[Input], rt[CacheWrite5m], rt[CacheWrite1h], rt[CacheRead])
}

func maxRates(a, b rates) rates {
	for k := range a {
		a[k] = max(a[k], b[k])
	}
	return a
}
