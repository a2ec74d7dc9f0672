package pricing

import (
	"fmt"
	"math"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/meter"
)

// costIterations prices a usage that reports usage.iterations: each
// iteration (a step of a server-side loop, a compaction, an advisor call,
// a fallback attempt) at its own model's rates, with the response's tier,
// geo and speed; an iteration that names no model ran on the response's.
// The top-level counts are the sum of the iterations, so they are not
// priced again; only what they report beyond that sum (per token kind) is
// priced at the response's model, so a breakdown that falls short never
// lowers the bill. Web search requests are counted once, from the top
// level. Each iteration is rounded up on its own.
func (t *Table) costIterations(u meter.Usage, its []meter.Iteration, at time.Time) (Cost, error) {
	var total Cost
	var sum [4]int64 // input, cache creation, cache read, output over the iterations
	add := func(c Cost) error {
		if total.Total > math.MaxInt64-c.Total {
			return fmt.Errorf("%w: cost of %q iterations", ErrOutOfRange, u.Model)
		}
		total.Total += c.Total
		for k := range c.Components {
			total.Components[k] += c.Components[k]
			total.Tokens[k] += c.Tokens[k]
		}
		total.ChargedAsMax = total.ChargedAsMax || c.ChargedAsMax
		return nil
	}
	for _, it := range its {
		iu := meter.Usage{
			Model:       it.Model,
			InputTokens: it.InputTokens, CacheCreationInputTokens: it.CacheCreationInputTokens,
			CacheReadInputTokens: it.CacheReadInputTokens, OutputTokens: it.OutputTokens,
			CacheCreationSplit: it.CacheCreationSplit, CacheWrite5mTokens: it.CacheWrite5mTokens, CacheWrite1hTokens: it.CacheWrite1hTokens,
			ServiceTier: u.ServiceTier, InferenceGeo: u.InferenceGeo, Speed: u.Speed,
		}
		if iu.Model == "" {
			iu.Model = u.Model
		}
		c, err := t.costOne(iu, at)
		if err != nil {
			return Cost{}, fmt.Errorf("iteration on %q: %w", iu.Model, err)
		}
		if err := add(c); err != nil {
			return Cost{}, err
		}
		for k, n := range [4]int64{it.InputTokens, it.CacheCreationInputTokens, it.CacheReadInputTokens, it.OutputTokens} {
			sum[k] = min(sum[k]+n, MaxCount+1)
		}
	}
	rest := u
	rest.IterationsJSON = ""
	rest.InputTokens = max(0, u.InputTokens-sum[0])
	rest.CacheCreationInputTokens = max(0, u.CacheCreationInputTokens-sum[1])
	rest.CacheReadInputTokens = max(0, u.CacheReadInputTokens-sum[2])
	rest.OutputTokens = max(0, u.OutputTokens-sum[3])
	// The excess cache writes are billed at the dearer TTL.
	rest.CacheCreationSplit, rest.CacheWrite5mTokens, rest.CacheWrite1hTokens = true, 0, rest.CacheCreationInputTokens
	c, err := t.costOne(rest, at)
	if err != nil {
		return Cost{}, err
	}
	if err := add(c); err != nil {
		return Cost{}, err
	}
	total.Model = c.Model
	return total, nil
}
