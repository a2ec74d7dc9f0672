// Package pricing turns token usage into exact cost, and a request into an
// upper-bound cost for admission.
//
// # Price table
//
// The list prices ship as data (prices.yaml, embedded): USD per million
// tokens, written as decimal strings and parsed with money.Parse into
// nano-USD per MTok, never through float arithmetic. Each model has a dated
// list of prices; a price applies from 00:00 UTC of its effective_from day,
// and Cost picks the latest entry whose effective_from is not after the
// usage time. The first entry has no date and covers all earlier times.
//
// Per model the table also carries:
//   - fast-mode rates (usage speed "fast"). The sheet gives only fast input
//     and output; fast cache rates are derived from the fast input rate by
//     the standard multipliers: 5-minute write 1.25x, 1-hour write 2x, and
//     cache read by the model's own cache_read/input ratio (0.05 on Opus 5.5,
//     so $0.40; 0.1 on Opus 5 and 4.8, so $1), rounded up to the nano-USD
//     per MTok. A model without fast rates bills fast usage at standard
//     rates: Opus 4.6 runs fast requests at standard speed and bills them so.
//   - a long-prompt tier: when a request's prompt (uncached input + cache
//     writes + cache reads) is over the threshold, every token of the
//     request, output included, is billed at the tier's rates (Haiku 5.5
//     over 100,000). A model has fast rates or a long-prompt tier, not both.
//   - a data-residency flag: usage inference_geo "us" multiplies every token
//     charge by 1.1 on flagged models (Claude 4.6 and later) and changes
//     nothing on the others.
//
// Operators add or override models through policy.Pricing. An override of a
// listed model (by ID or alias; both names then bill the same) replaces its
// standard rates from the beginning of time, so dated changes on the sheet
// no longer apply to it. It keeps the sheet's fast rates, long-prompt tier
// and residency flag, because policy.ModelPrice cannot express them and they
// are what Anthropic bills in those modes. A model only the policy names has
// no fast rates and no long-prompt tier, and is treated as data-residency
// flagged: every model released since 4.6 is, and over-charging a new model
// by 10% is safer than under-charging it.
//
// # Cost
//
// For one response,
//
//	cost = geo × batch × Σ tokens[k] × rate[k] / 1e6 + web_search_requests × $0.01
//
// over the five token kinds, where geo is 1.1 or 1 and batch is 0.5 (usage
// service_tier "batch") or 1. Cache writes come from the 5m/1h split when
// usage has one, else all of them are 5-minute writes; if the split sums to
// less than cache_creation_input_tokens (an SSE delta grew the total), the
// excess is billed at the 1-hour rate, the dearer one. The multipliers apply
// to token charges only; the web search fee is flat.
//
// The sum is exact: every product and the multipliers are kept as one
// 128-bit rational numerator over 2e7 and divided once, rounding up to the
// nano-USD, so Total never loses a fraction and never rounds down. Each of
// Components is rounded up on its own for metrics and the spend log, so the
// components can add up to more than Total, by less than one nano-USD for
// each fractional component (under NumComponents in all). Counts above
// MaxCount and results that do not fit money.Nanos are ErrOutOfRange.
//
// # Estimate
//
// Estimate is an upper bound of Cost for a request before it is sent:
//
//   - prompt tokens ≤ PromptBytes + 2,048. Every token is at least one byte
//     of request text (base64 images cost far fewer tokens than their bytes),
//     and 2,048 tokens cover fixed overhead the API adds (tool-use system
//     prompts and the like);
//   - every prompt token is priced at the dearest input-side rate the
//     request can incur (Request.Cache): the input rate when it has no
//     cache_control anywhere (nothing can be written to the cache, and a
//     cache read is cheaper than input), the 5-minute write rate when it
//     has cache_control but no ttl "1h", else the 1-hour write rate (2x
//     input), since the request may write all of it to cache;
//   - output is MaxTokens at the output rate;
//   - the long-prompt tier applies if the prompt bound is over its
//     threshold, fast rates if Fast (and the model has them), 1.1 if
//     InferenceGeoUS (and the model is flagged; the caller must set it when
//     the workspace default geo is "us"), 0.5 if Batch;
//   - Allowance is added when ServerTools, as server tools (web search,
//     fetched content, file references) grow a request on the server side;
//   - the result is rounded up.
//
// EstimateSplit gives the same bound as a fixed part (max_tokens 0) and a
// price per output token, each rounded up, so that admission can find the
// largest max_tokens whose bound fits a budget.
//
// # Unknown models
//
// Cost and Estimate of a model the table does not know (exact ID or alias;
// no prefix guessing) fail with ErrUnknownModel, unless the policy says
// charge_max: then the usage is priced at every known model and the dearest
// result is charged, with Cost.ChargedAsMax set.
package pricing

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// MaxCount is the largest token or request count Cost and Estimate accept.
// It keeps every intermediate product inside 128 bits.
const MaxCount = 1 << 40

// Errors.
var (
	ErrUnknownModel = errors.New("pricing: unknown model")
	ErrOutOfRange   = errors.New("pricing: count or amount out of range")
	ErrInvalidTable = errors.New("pricing: invalid price table")
)

// Table is a compiled price table. It is immutable after construction and
// safe for concurrent use.
type Table struct {
	byName    map[string]*model // IDs and aliases
	models    []*model          // one per model, sorted by ID
	names     []string          // IDs and aliases, sorted
	unknown   policy.UnknownModel
	webSearch money.Nanos // per request
}

// Default returns the embedded price table, which rejects unknown models.
func Default() (*Table, error) {
	return parse(pricesYAML)
}

// New returns base with the policy's overrides layered on top and its
// unknown-model rule. A nil base starts from an empty table.
func New(base *Table, overrides policy.Pricing) (*Table, error) {
	if base == nil {
		base = &Table{byName: map[string]*model{}}
	}
	var errs []error
	switch overrides.UnknownModel {
	case "", policy.UnknownReject, policy.UnknownChargeMax:
	default:
		errs = append(errs, fmt.Errorf("unknown_model %q: want %q or %q",
			overrides.UnknownModel, policy.UnknownReject, policy.UnknownChargeMax))
	}
	byID := make(map[string]*model, len(base.models))
	for _, m := range base.models {
		byID[m.id] = m
	}
	overridden := map[string]string{} // model ID -> the policy name that overrode it
	for _, name := range slices.Sorted(maps.Keys(overrides.Models)) {
		mp := overrides.Models[name]
		std, err := overrideRates(name, mp)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, ok := base.byName[name]; ok {
			if other, dup := overridden[prev.id]; dup {
				errs = append(errs, fmt.Errorf("model %q: overridden twice, as %q and %q", prev.id, other, name))
				continue
			}
			overridden[prev.id] = name
			byID[prev.id] = prev.withStandard(std)
			continue
		}
		byID[name] = &model{
			id:            name,
			source:        "policy override",
			residency:     true,
			periods:       []period{{std: std}},
			contextWindow: DefaultContextWindow,
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: pricing overrides: %w", ErrInvalidTable, errors.Join(errs...))
	}
	unknown := overrides.UnknownModel
	if unknown == "" {
		unknown = policy.UnknownReject
	}
	models := slices.Collect(maps.Values(byID))
	if d := overrides.Discount; d < 0 || d > money.PerUSD {
		return nil, fmt.Errorf("%w: discount %s is not in (0, 1]", ErrInvalidTable, d)
	}
	for i, m := range models {
		models[i] = m.discounted(overrides.Discount)
	}
	return build(models, unknown, money.Nanos(scale(uint64(base.webSearch), overrides.Discount)))
}

// build indexes models by ID and alias.
func build(models []*model, unknown policy.UnknownModel, webSearch money.Nanos) (*Table, error) {
	slices.SortFunc(models, func(a, b *model) int { return strings.Compare(a.id, b.id) })
	t := &Table{
		byName:    make(map[string]*model, len(models)),
		models:    models,
		unknown:   unknown,
		webSearch: webSearch,
	}
	for _, m := range models {
		for _, n := range append([]string{m.id}, m.aliases...) {
			if _, dup := t.byName[n]; dup {
				return nil, fmt.Errorf("%w: model name %q is listed twice", ErrInvalidTable, n)
			}
			t.byName[n] = m
			t.names = append(t.names, n)
		}
	}
	slices.Sort(t.names)
	return t, nil
}

// Known reports whether model is a model ID or alias in the table. Names
// are matched exactly: a dated ID the table lacks is unknown even if its
// undated alias is listed.
func (t *Table) Known(model string) bool {
	_, ok := t.byName[model]
	return ok
}

// Canonical returns the model ID that model (an ID or alias) bills as.
func (t *Table) Canonical(model string) (string, bool) {
	m, ok := t.byName[model]
	if !ok {
		return "", false
	}
	return m.id, true
}

// Models returns every known model ID and alias, sorted: the bounded label
// set for per-model metrics.
func (t *Table) Models() []string {
	return slices.Clone(t.names)
}

// UnknownModel returns what the table does with models it does not know.
func (t *Table) UnknownModel() policy.UnknownModel { return t.unknown }
