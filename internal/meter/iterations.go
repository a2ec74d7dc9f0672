package meter

import "github.com/clade-gateway/clade-gateway/internal/jsonscan"

// Iteration is one entry of usage.iterations: one sampling iteration of a
// server-side loop, compaction, an advisor call or a server-side fallback
// attempt, each with the model that ran it. When a usage reports
// iterations, pricing bills each at its own model.
type Iteration struct {
	Type  string // "message", "compaction", "advisor_message", "fallback_message", …
	Model string // "" when the entry names none (compaction): the response's model

	InputTokens              int64
	CacheCreationInputTokens int64
	CacheReadInputTokens     int64
	OutputTokens             int64
	CacheCreationSplit       bool
	CacheWrite5mTokens       int64
	CacheWrite1hTokens       int64
}

// PromptTokens is the iteration's whole prompt.
func (it Iteration) PromptTokens() int64 {
	return it.InputTokens + it.CacheCreationInputTokens + it.CacheReadInputTokens
}

// maxIterations bounds the entries kept; a usage with more is invalid.
// Real loops stop far earlier (the API pauses a long turn).
const maxIterations = 256

// parseIterations reads usage.iterations. invalid names the first field
// that was not a usable value.
func parseIterations(raw []byte) (its []Iteration, isArray bool, invalid string) {
	isArray = jsonscan.Elements(raw, func(v []byte) {
		if len(its) == maxIterations {
			if invalid == "" {
				invalid = "iterations (too many)"
			}
			return
		}
		var it Iteration
		var in, cc, cr, out, e5, e1 count
		var typ, model text
		ok := jsonscan.Fields(v, func(key, v []byte) {
			switch string(key) {
			case "type":
				typ.parse(v)
			case "model":
				model.parse(v)
			case "input_tokens":
				in.parse(v)
			case "cache_creation_input_tokens":
				cc.parse(v)
			case "cache_read_input_tokens":
				cr.parse(v)
			case "output_tokens":
				out.parse(v)
			case "cache_creation":
				e5, e1 = count{}, count{}
				it.CacheCreationSplit = jsonscan.Fields(v, func(key, v []byte) {
					switch string(key) {
					case "ephemeral_5m_input_tokens":
						e5.parse(v)
					case "ephemeral_1h_input_tokens":
						e1.parse(v)
					}
				})
			}
		})
		if !ok {
			invalid = firstNonEmpty(invalid, "iterations[] (not an object)")
			return
		}
		for _, c := range []struct {
			name string
			c    count
		}{{"input_tokens", in}, {"cache_creation_input_tokens", cc}, {"cache_read_input_tokens", cr},
			{"output_tokens", out}, {"ephemeral_5m_input_tokens", e5}, {"ephemeral_1h_input_tokens", e1}} {
			if c.c.bad {
				invalid = firstNonEmpty(invalid, "iterations[]."+c.name)
			}
		}
		it.Type, it.Model = typ.v, model.v
		it.InputTokens, it.CacheCreationInputTokens, it.CacheReadInputTokens, it.OutputTokens = in.v, cc.v, cr.v, out.v
		it.CacheWrite5mTokens, it.CacheWrite1hTokens = e5.v, e1.v
		its = append(its, it)
	})
	return its, isArray, invalid
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
