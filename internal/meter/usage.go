// Package meter turns Anthropic responses (JSON bodies, SSE streams and
// batch result lines) into token usage. It is pure: no network, no store,
// no clock. Pricing lives in package pricing.
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
}

// PromptTokens is the whole prompt: uncached input, cache reads and cache
// writes. Long-prompt price tiers are decided on it.
func (u Usage) PromptTokens() int64 {
	return u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
}
