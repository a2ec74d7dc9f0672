package meter

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
)

// The wire types below decode the usage-bearing parts of Anthropic payloads
// leniently: a field of the wrong JSON type is treated as absent rather than
// failing the whole object, because one odd field must not lose the counts
// beside it. Each records whether it was present so that message_delta can
// overwrite exactly the fields it carries.

// count is a token or request count as sent: present only when it was a
// JSON number. Negative values clamp to 0, huge ones to maxCount, and a
// fractional one rounds up (charging a part token as a whole one).
type count struct {
	set bool
	v   int64
}

func (c *count) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return nil // null, a string, a bool, an object: no change
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err == nil {
		*c = count{set: true, v: clampCount(n)}
		return nil
	}
	f, ferr := strconv.ParseFloat(string(b), 64)
	if ferr != nil && !isRangeErr(ferr) {
		return nil
	}
	switch {
	case math.IsNaN(f) || f <= 0:
		*c = count{set: true, v: 0}
	case f >= float64(maxCount):
		*c = count{set: true, v: maxCount}
	default:
		*c = count{set: true, v: int64(math.Ceil(f))}
	}
	return nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func clampCount(n int64) int64 {
	return max(0, min(n, maxCount))
}

// text is a short string field: present only when it was a JSON string of
// at most maxStringField bytes.
type text struct {
	set bool
	v   string
}

func (t *text) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '"' || len(b) > maxStringField+2 {
		return nil
	}
	var s string
	if json.Unmarshal(b, &s) != nil || len(s) > maxStringField {
		return nil
	}
	*t = text{set: true, v: s}
	return nil
}

// isObject reports whether raw JSON is an object (leading space allowed).
func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

type wireCacheCreation struct {
	set   bool
	Eph5m count `json:"ephemeral_5m_input_tokens"`
	Eph1h count `json:"ephemeral_1h_input_tokens"`
}

func (w *wireCacheCreation) UnmarshalJSON(b []byte) error {
	if !isObject(b) {
		return nil
	}
	type plain wireCacheCreation // drops the method, so no recursion
	var p plain
	if json.Unmarshal(b, &p) != nil {
		return nil
	}
	*w = wireCacheCreation(p)
	w.set = true
	return nil
}

type wireServerToolUse struct {
	set         bool
	WebSearches count `json:"web_search_requests"`
	WebFetches  count `json:"web_fetch_requests"`
}

func (w *wireServerToolUse) UnmarshalJSON(b []byte) error {
	if !isObject(b) {
		return nil
	}
	type plain wireServerToolUse
	var p plain
	if json.Unmarshal(b, &p) != nil {
		return nil
	}
	*w = wireServerToolUse(p)
	w.set = true
	return nil
}

type wireOutputDetails struct {
	set      bool
	Thinking count `json:"thinking_tokens"`
}

func (w *wireOutputDetails) UnmarshalJSON(b []byte) error {
	if !isObject(b) {
		return nil
	}
	type plain wireOutputDetails
	var p plain
	if json.Unmarshal(b, &p) != nil {
		return nil
	}
	*w = wireOutputDetails(p)
	w.set = true
	return nil
}

// wireUsage is a "usage" object, from a Message or a message_delta.
type wireUsage struct {
	set           bool
	Input         count             `json:"input_tokens"`
	CacheCreation count             `json:"cache_creation_input_tokens"`
	CacheRead     count             `json:"cache_read_input_tokens"`
	Split         wireCacheCreation `json:"cache_creation"`
	Output        count             `json:"output_tokens"`
	OutputDetails wireOutputDetails `json:"output_tokens_details"`
	ServerTools   wireServerToolUse `json:"server_tool_use"`
	ServiceTier   text              `json:"service_tier"`
	InferenceGeo  text              `json:"inference_geo"`
	Speed         text              `json:"speed"`
}

func (w *wireUsage) UnmarshalJSON(b []byte) error {
	if !isObject(b) {
		return nil // null or not an object: "no usage"
	}
	type plain wireUsage
	var p plain
	if json.Unmarshal(b, &p) != nil {
		return nil
	}
	*w = wireUsage(p)
	w.set = true
	return nil
}

// decodeUsage decodes one usage object into a fresh Usage. ok is false
// when raw is not a JSON object.
func decodeUsage(raw []byte) (Usage, bool) {
	var w wireUsage
	if json.Unmarshal(raw, &w) != nil || !w.set {
		return Usage{}, false
	}
	var u Usage
	u.apply(&w)
	return u, true
}

// apply overwrites every field of u that w carries. This is the SSE
// accumulation rule (message_delta counts are cumulative totals, omitted
// when they do not apply) and, applied to a zero Usage, a plain decode.
func (u *Usage) apply(w *wireUsage) {
	oldCacheCreation := u.CacheCreationInputTokens
	setInt(&u.InputTokens, w.Input)
	setInt(&u.CacheCreationInputTokens, w.CacheCreation)
	setInt(&u.CacheReadInputTokens, w.CacheRead)
	setInt(&u.OutputTokens, w.Output)
	if w.OutputDetails.set {
		setInt(&u.ThinkingTokens, w.OutputDetails.Thinking)
	}
	if w.ServerTools.set {
		setInt(&u.WebSearchRequests, w.ServerTools.WebSearches)
		setInt(&u.WebFetchRequests, w.ServerTools.WebFetches)
	}
	setStr(&u.ServiceTier, w.ServiceTier)
	setStr(&u.InferenceGeo, w.InferenceGeo)
	setStr(&u.Speed, w.Speed)
	switch {
	case w.Split.set:
		u.CacheCreationSplit = true
		setInt(&u.CacheWrite5mTokens, w.Split.Eph5m)
		setInt(&u.CacheWrite1hTokens, w.Split.Eph1h)
	case u.CacheCreationSplit && u.CacheCreationInputTokens != oldCacheCreation:
		u.resplit()
	}
}

// resplit makes the 5m/1h split add up to a cache-creation total that a
// message_delta changed without saying how it divides between TTLs (it
// never carries cache_creation; reference §9 question 3). Nobody knows the
// true division, so it is the one dearest to the payer: writes the split
// does not account for are billed as 1-hour writes (2x input, against
// 1.25x for 5-minute ones), and when the total shrinks the 5-minute writes
// are taken away first.
func (u *Usage) resplit() {
	total := u.CacheCreationInputTokens
	if total >= u.CacheWrite5mTokens+u.CacheWrite1hTokens {
		u.CacheWrite1hTokens = total - u.CacheWrite5mTokens
		return
	}
	u.CacheWrite1hTokens = min(u.CacheWrite1hTokens, total)
	u.CacheWrite5mTokens = total - u.CacheWrite1hTokens
}

func setInt(dst *int64, c count) {
	if c.set {
		*dst = c.v
	}
}

func setStr(dst *string, t text) {
	if t.set {
		*dst = t.v
	}
}
