package pricing

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// pricesYAML is a string, not a []byte, so nothing can change it.
//
//go:embed prices.yaml
var pricesYAML string

// rates are nano-USD per MTok for the token kinds, indexed by Component.
type rates [numTokenKinds]uint64

// period is a model's prices from one effective date on.
type period struct {
	from    time.Time // zero for the first period
	std     rates
	fast    rates
	hasFast bool
}

// model is one priced model with its aliases.
type model struct {
	id        string
	aliases   []string
	source    string
	residency bool
	periods   []period // sorted by from; periods[0].from is zero
	longOver  int64    // prompt tokens over which long applies; 0: no tier
	long      rates
	// contextWindow bounds one sampling iteration's prompt in tokens.
	contextWindow int64
}

// at returns the period in force at t.
func (m *model) at(t time.Time) *period {
	for i := len(m.periods) - 1; i > 0; i-- {
		if !t.Before(m.periods[i].from) {
			return &m.periods[i]
		}
	}
	return &m.periods[0]
}

// withStandard returns a copy of m whose standard rates are std at all
// times; fast rates come from m's latest period.
func (m *model) withStandard(std rates) *model {
	last := m.periods[len(m.periods)-1]
	c := *m
	c.source = "policy override of " + m.source
	c.periods = []period{{std: std, fast: last.fast, hasFast: last.hasFast}}
	return &c
}

type fileSchema struct {
	WebSearchPerRequest string        `yaml:"web_search_per_request"`
	Models              []modelSchema `yaml:"models"`
}

type rateSchema struct {
	Input        string `yaml:"input"`
	CacheWrite5m string `yaml:"cache_write_5m"`
	CacheWrite1h string `yaml:"cache_write_1h"`
	CacheRead    string `yaml:"cache_read"`
	Output       string `yaml:"output"`
}

type priceSchema struct {
	EffectiveFrom string `yaml:"effective_from"`
	rateSchema    `yaml:",inline"`
}

type longSchema struct {
	OverPromptTokens int64 `yaml:"over_prompt_tokens"`
	rateSchema       `yaml:",inline"`
}

type modelSchema struct {
	ID            string        `yaml:"id"`
	Aliases       []string      `yaml:"aliases"`
	Source        string        `yaml:"source"`
	DataResidency bool          `yaml:"data_residency"`
	Prices        []priceSchema `yaml:"prices"`
	Fast          *rateSchema   `yaml:"fast"`
	LongPrompt    *longSchema   `yaml:"long_prompt"`
	ContextWindow int64         `yaml:"context_window"`
}

// parse decodes and compiles a price table file, reporting every problem
// at once.
func parse(src string) (*Table, error) {
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	var f fileSchema
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTable, err)
	}
	if err := dec.Decode(new(any)); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrInvalidTable)
	}
	var errs []error
	webSearch, err := parseRate("web_search_per_request", f.WebSearchPerRequest)
	if err != nil {
		errs = append(errs, err)
	}
	if len(f.Models) == 0 {
		errs = append(errs, errors.New("no models"))
	}
	models := make([]*model, 0, len(f.Models))
	for i, ms := range f.Models {
		m, err := compileModel(ms)
		if err != nil {
			errs = append(errs, fmt.Errorf("models[%d] %q: %w", i, ms.ID, err))
			continue
		}
		models = append(models, m)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTable, errors.Join(errs...))
	}
	return build(models, policy.UnknownReject, money.Nanos(webSearch))
}

func compileModel(ms modelSchema) (*model, error) {
	var errs []error
	if err := checkName(ms.ID); err != nil {
		errs = append(errs, fmt.Errorf("id: %w", err))
	}
	for _, a := range ms.Aliases {
		if err := checkName(a); err != nil {
			errs = append(errs, fmt.Errorf("alias: %w", err))
		}
	}
	if strings.TrimSpace(ms.Source) == "" {
		errs = append(errs, errors.New("source is required"))
	}
	if len(ms.Prices) == 0 {
		errs = append(errs, errors.New("prices is empty"))
	}
	if ms.Fast != nil && ms.LongPrompt != nil {
		errs = append(errs, errors.New("fast and long_prompt together: no price is known for the combination"))
	}
	m := &model{id: ms.ID, aliases: ms.Aliases, source: ms.Source, residency: ms.DataResidency, contextWindow: ms.ContextWindow}
	switch {
	case ms.ContextWindow == 0:
		m.contextWindow = DefaultContextWindow
	case ms.ContextWindow < 0 || ms.ContextWindow > MaxCount/64:
		errs = append(errs, fmt.Errorf("context_window %d: must be positive and at most %d", ms.ContextWindow, MaxCount/64))
	}
	for i, ps := range ms.Prices {
		p, err := compilePeriod(i, ps, m.periods)
		if err != nil {
			errs = append(errs, fmt.Errorf("prices[%d]: %w", i, err))
			continue
		}
		if ms.Fast != nil {
			p.fast, err = deriveFast(*ms.Fast, p.std)
			if err != nil {
				errs = append(errs, fmt.Errorf("fast: %w", err))
				continue
			}
			p.hasFast = true
		}
		m.periods = append(m.periods, p)
	}
	if lp := ms.LongPrompt; lp != nil {
		if lp.OverPromptTokens <= 0 {
			errs = append(errs, errors.New("long_prompt: over_prompt_tokens must be positive"))
		}
		r, err := parseRates(lp.rateSchema)
		if err != nil {
			errs = append(errs, fmt.Errorf("long_prompt: %w", err))
		}
		m.longOver, m.long = lp.OverPromptTokens, r
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// compilePeriod checks that dates start undated and then strictly increase,
// so "the latest entry not after t" is always one entry.
func compilePeriod(i int, ps priceSchema, prev []period) (period, error) {
	var p period
	if i == 0 {
		if ps.EffectiveFrom != "" {
			return p, errors.New("the first entry applies from the beginning of time and takes no effective_from")
		}
	} else {
		from, err := time.Parse(time.DateOnly, ps.EffectiveFrom)
		if err != nil {
			return p, fmt.Errorf("effective_from: want YYYY-MM-DD: %w", err)
		}
		if len(prev) > 0 && !from.After(prev[len(prev)-1].from) {
			return p, fmt.Errorf("effective_from %s is not after the previous entry", ps.EffectiveFrom)
		}
		p.from = from
	}
	std, err := parseRates(ps.rateSchema)
	if err != nil {
		return p, err
	}
	p.std = std
	return p, nil
}

// deriveFast fills fast cache rates the file leaves out from the fast input
// rate: 1.25x, 2x and std's cache_read/input ratio, rounded up.
func deriveFast(fs rateSchema, std rates) (rates, error) {
	var r rates
	var errs []error
	get := func(c Component, s string, derive func(in uint64) (uint64, bool)) {
		if s == "" && derive != nil {
			v, ok := derive(r[Input])
			if !ok {
				errs = append(errs, fmt.Errorf("%s: cannot derive; write it out", c))
			}
			r[c] = v
			return
		}
		v, err := parseRate(c.String(), s)
		if err != nil {
			errs = append(errs, err)
		}
		r[c] = v
	}
	get(Input, fs.Input, nil)
	get(Output, fs.Output, nil)
	if len(errs) > 0 {
		return r, errors.Join(errs...)
	}
	get(CacheWrite5m, fs.CacheWrite5m, func(in uint64) (uint64, bool) { return scaleUp(in, 5, 4) })
	get(CacheWrite1h, fs.CacheWrite1h, func(in uint64) (uint64, bool) { return scaleUp(in, 2, 1) })
	get(CacheRead, fs.CacheRead, func(in uint64) (uint64, bool) {
		if std[Input] == 0 {
			return 0, false
		}
		return scaleUp(in, std[CacheRead], std[Input])
	})
	return r, errors.Join(errs...)
}

// scaleUp returns ceil(v*num/den) if it fits an int64.
func scaleUp(v, num, den uint64) (uint64, bool) {
	q, ok := mul64(v, num).divUp(den)
	return uint64(q), ok
}

func parseRates(rs rateSchema) (rates, error) {
	var r rates
	var errs []error
	// Indexed by Component, so errors come out in a stable order.
	for c, s := range [numTokenKinds]string{rs.Input, rs.Output, rs.CacheWrite5m, rs.CacheWrite1h, rs.CacheRead} {
		v, err := parseRate(Component(c).String(), s)
		if err != nil {
			errs = append(errs, err)
		}
		r[c] = v
	}
	return r, errors.Join(errs...)
}

// parseRate reads one decimal USD figure exactly.
func parseRate(field, s string) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("%s is required", field)
	}
	n, err := money.Parse(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", field, err)
	}
	if n < 0 {
		return 0, fmt.Errorf("%s: %s is negative", field, s)
	}
	return uint64(n), nil
}

// overrideRates checks one policy override.
func overrideRates(name string, mp policy.ModelPrice) (rates, error) {
	if err := checkName(name); err != nil {
		return rates{}, fmt.Errorf("model %q: %w", name, err)
	}
	r := rates{
		Input: uint64(mp.Input), Output: uint64(mp.Output), CacheWrite5m: uint64(mp.CacheWrite5m),
		CacheWrite1h: uint64(mp.CacheWrite1h), CacheRead: uint64(mp.CacheRead),
	}
	for c, v := range []money.Nanos{mp.Input, mp.Output, mp.CacheWrite5m, mp.CacheWrite1h, mp.CacheRead} {
		if v < 0 {
			return rates{}, fmt.Errorf("model %q: %s is negative (%s)", name, Component(c), v)
		}
	}
	return r, nil
}

// checkName rejects names that could never match a response's model.
func checkName(n string) error {
	if n == "" {
		return errors.New("empty model name")
	}
	if strings.ContainsFunc(n, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("model name %q contains a space or control character", n)
	}
	return nil
}
