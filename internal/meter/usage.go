// Package meter turns Anthropic responses (JSON bodies, SSE streams and
// batch result lines) into token usage. It is pure: no network, no store,
// no clock. Pricing lives in package pricing.
//
// The proxy tees each response body through an SSEParser or a
// JSONExtractor as the bytes pass to the client. Both are incremental: the
// result does not depend on how the body is split into writes, and memory
// stays bounded (Limits) whatever the upstream sends.
//
// Streams follow the SDKs' accumulation rule: message_start gives the usage
// snapshot, model and id; every message_delta overwrites each usage field it
// carries (the counts are cumulative, never summed); a missing or null
// usage or field changes nothing. The payload's "type" decides what an
// event is, not its "event:" name. Only message_start, message_delta and
// error events are decoded; content_block_delta events are counted in bytes
// and everything else is skipped. A message_delta never carries the 5m/1h
// split of cache writes; when it changes their total, the change is billed
// at the dearer 1-hour rate, because the true division is not documented.
//
// Interrupted streams. When a stream ends without its final usage (no
// message_delta, no message_stop, or an error event), EstimateInterrupted
// charges the input side as last seen (message_start, or a later
// message_delta) and output_tokens = max(last seen output_tokens,
// min(maxTokens, StreamedOutputBytes)), the min applying only when
// maxTokens > 0. A token is at least one byte of delta payload, so the
// bytes of content_block_delta data bound the tokens streamed; the bytes
// include the JSON framing of each event, which overcounts on purpose,
// because summarised thinking bills more tokens than it shows. A stream
// that produced output is never charged zero output. If message_start was
// never seen nothing is known, not even the model: EstimateInterrupted
// returns a zero Usage with an empty Model and the proxy charges the hold's
// estimate instead.
package meter

// Usage is what one Messages response reports in its "usage" object, after
// the SSE accumulation rule has been applied. Counts are clamped to be
// non-negative by the parsers. Absent fields are zero.
type Usage struct {
	// Model is the response's "model" (the model that actually served it).
	Model string

	InputTokens              int64 // uncached input (after the last cache breakpoint)
	CacheCreationInputTokens int64 // all cache writes, every TTL
	CacheReadInputTokens     int64
	OutputTokens             int64 // billed output, thinking included
	// ThinkingTokens is output_tokens_details.thinking_tokens: the part of
	// OutputTokens spent thinking. Informational; never price it again.
	ThinkingTokens int64

	// CacheCreationSplit reports whether usage.cache_creation was present.
	// When it is not, every cache write is billed as a 5-minute write.
	CacheCreationSplit bool
	CacheWrite5mTokens int64 // cache_creation.ephemeral_5m_input_tokens
	CacheWrite1hTokens int64 // cache_creation.ephemeral_1h_input_tokens

	WebSearchRequests int64 // server_tool_use.web_search_requests
	WebFetchRequests  int64 // server_tool_use.web_fetch_requests

	ServiceTier  string // "standard", "priority", "batch" or ""
	InferenceGeo string // "global", "us" or ""
	Speed        string // "standard", "fast" or ""

	// IterationsJSON is the raw usage.iterations array when the response
	// reports one (Iterations decodes it): the per-model breakdown of
	// server-side loops, compaction, advisor calls and fallback attempts.
	// The last report wins, as for every field. Kept raw so that Usage
	// stays comparable.
	IterationsJSON string
}

// Validity is what a parser saw of a response's usage beyond its values:
// whether the counts a final usage must carry were reported, and whether
// any count was one the API cannot mean. The proxy charges an impossible
// usage by its hold instead of by its values.
type Validity struct {
	// InputReported and OutputReported say whether input_tokens and
	// output_tokens were ever reported as numbers.
	InputReported, OutputReported bool
	// Invalid names the first count that was present but not a count the
	// API can mean (negative, fractional, not a number); "" if none. The
	// count itself reads as clamped (0 for a negative) or absent.
	Invalid string
}

// note records one usage object.
func (v *Validity) note(w *wireUsage) {
	v.InputReported = v.InputReported || w.input.set
	v.OutputReported = v.OutputReported || w.output.set
	if v.Invalid == "" {
		v.Invalid = w.invalid
	}
}

// PromptTokens is the whole prompt: uncached input, cache reads and cache
// writes. Long-prompt price tiers are decided on it.
func (u Usage) PromptTokens() int64 {
	return u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
}

// Iterations decodes IterationsJSON; nil when there is none.
func (u Usage) Iterations() []Iteration {
	if u.IterationsJSON == "" {
		return nil
	}
	its, _, _ := parseIterations([]byte(u.IterationsJSON))
	return its
}
