package pricing

import (
	"fmt"
	"math"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// Component is one kind of charge.
type Component int

// Components. The token kinds come first; their order indexes rates.
const (
	Input Component = iota
	Output
	CacheWrite5m
	CacheWrite1h
	CacheRead
	WebSearch
)

// NumComponents is the number of Components.
const NumComponents = int(WebSearch) + 1

// numTokenKinds is the number of Components billed per token.
const numTokenKinds = int(WebSearch)

// String returns the component's name as used in metric labels and the
// spend log.
func (c Component) String() string {
	switch c {
	case Input:
		return "input"
	case Output:
		return "output"
	case CacheWrite5m:
		return "cache_write_5m"
	case CacheWrite1h:
		return "cache_write_1h"
	case CacheRead:
		return "cache_read"
	case WebSearch:
		return "web_search"
	}
	return fmt.Sprintf("Component(%d)", int(c))
}

// Cost is the price of one response.
type Cost struct {
	// Total is the exact sum, rounded once, up, to the nano-USD.
	Total money.Nanos
	// Components are each rounded up on their own, so their sum can exceed
	// Total by less than NumComponents nano-USD.
	Components [NumComponents]money.Nanos
	// Tokens are the billed counts by the same kinds (WebSearch counts
	// requests). Cache writes are after the 5m/1h split rule.
	Tokens [NumComponents]int64
	// ChargedAsMax reports whether the model was unknown and the usage was
	// priced at the dearest known model.
	ChargedAsMax bool
	// Model is the ID whose rates were used.
	Model string
}

// Multipliers are kept as integer numerators over one denominator: geo is
// 11/10 or 10/10, batch 1/2 or 2/2, and prices are per 1e6 tokens.
const (
	geoUS, geoStd           = 11, 10
	batchOn, batchOff       = 1, 2
	denom             int64 = 1_000_000 * 10 * 2
)

// Cost prices u at time at with the rates of u.Model, or per iteration
// when u reports usage.iterations (iterations.go).
func (t *Table) Cost(u meter.Usage, at time.Time) (Cost, error) {
	if its := u.Iterations(); len(its) > 0 {
		return t.costIterations(u, its, at)
	}
	return t.costOne(u, at)
}

// costOne prices u at time at with the rates of u.Model.
func (t *Table) costOne(u meter.Usage, at time.Time) (Cost, error) {
	if m, ok := t.byName[u.Model]; ok {
		return t.cost(m, u, at)
	}
	if t.unknown != policy.UnknownChargeMax || len(t.models) == 0 {
		return Cost{}, fmt.Errorf("%w: %q", ErrUnknownModel, u.Model)
	}
	var best Cost
	for i, m := range t.models {
		c, err := t.cost(m, u, at)
		if err != nil {
			return Cost{}, err
		}
		if i == 0 || c.Total > best.Total {
			best = c
		}
	}
	best.ChargedAsMax = true
	return best, nil
}

func (t *Table) cost(m *model, u meter.Usage, at time.Time) (Cost, error) {
	for _, n := range [...]int64{
		u.InputTokens, u.CacheCreationInputTokens, u.CacheReadInputTokens, u.OutputTokens,
		u.CacheWrite5mTokens, u.CacheWrite1hTokens, u.WebSearchRequests,
	} {
		if n < 0 || n > MaxCount {
			return Cost{}, fmt.Errorf("%w: usage count %d for %q", ErrOutOfRange, n, u.Model)
		}
	}
	c := Cost{Model: m.id}
	c.Tokens[Input] = u.InputTokens
	c.Tokens[Output] = u.OutputTokens
	c.Tokens[CacheRead] = u.CacheReadInputTokens
	c.Tokens[WebSearch] = u.WebSearchRequests
	if u.CacheCreationSplit {
		c.Tokens[CacheWrite5m] = u.CacheWrite5mTokens
		c.Tokens[CacheWrite1h] = u.CacheWrite1hTokens
		// The total grew after the split was reported: bill the part the
		// split does not explain at the dearer TTL.
		if excess := u.CacheCreationInputTokens - u.CacheWrite5mTokens - u.CacheWrite1hTokens; excess > 0 {
			c.Tokens[CacheWrite1h] += excess
		}
	} else {
		c.Tokens[CacheWrite5m] = u.CacheCreationInputTokens
	}

	// The prompt is what is billed, which is u.PromptTokens() unless the
	// split claims more cache writes than the total.
	prompt := c.Tokens[Input] + c.Tokens[CacheWrite5m] + c.Tokens[CacheWrite1h] + c.Tokens[CacheRead]
	p := m.at(at)
	r := &p.std
	switch {
	case u.Speed == "fast" && p.hasFast:
		r = &p.fast
	case m.longOver > 0 && prompt > m.longOver:
		r = &m.long
	}
	num := multiplier(m, u.InferenceGeo == "us", u.ServiceTier == "batch")

	var sum u128
	for k := range numTokenKinds {
		x, ok := mul64(uint64(c.Tokens[k]), r[k]).mulSmall(num)
		if ok {
			var comp int64
			comp, ok = x.divUp(uint64(denom))
			c.Components[k] = money.Nanos(comp)
		}
		if ok {
			sum, ok = sum.add(x)
		}
		if !ok {
			return Cost{}, fmt.Errorf("%w: %s cost of %d tokens of %q", ErrOutOfRange, Component(k), c.Tokens[k], m.id)
		}
	}
	tokens, ok := sum.divUp(uint64(denom))
	if !ok {
		return Cost{}, fmt.Errorf("%w: cost of %q usage", ErrOutOfRange, m.id)
	}
	ws, ok := mul64(uint64(c.Tokens[WebSearch]), uint64(t.webSearch)).divUp(1)
	if !ok || tokens > math.MaxInt64-ws {
		return Cost{}, fmt.Errorf("%w: %d web searches on %q", ErrOutOfRange, c.Tokens[WebSearch], m.id)
	}
	c.Components[WebSearch] = money.Nanos(ws)
	c.Total = money.Nanos(tokens + ws)
	return c, nil
}

// multiplier returns the numerator of geo × batch over denom.
func multiplier(m *model, geoUSReported, batch bool) uint64 {
	g, b := uint64(geoStd), uint64(batchOff)
	if geoUSReported && m.residency {
		g = geoUS
	}
	if batch {
		b = batchOn
	}
	return g * b
}
