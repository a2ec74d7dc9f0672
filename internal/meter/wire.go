package meter

import (
	"errors"
	"math"
	"strconv"

	"github.com/clade-gateway/clade-gateway/internal/jsonscan"
)

// The usage-bearing payloads are walked with jsonscan.Fields, which
// validates the whole payload (a malformed one records nothing) and walks
// the objects and picks out the few fields we price. Walking by hand
// instead of unmarshalling into structs costs no reflection and allocates
// only the strings kept, and it lets each field be lenient on its own: a
// field of the wrong JSON type is treated as absent, because one odd field
// must not lose the counts beside it. Each value records whether it was
// present so that message_delta overwrites exactly the fields it carries.

// count is a token or request count as sent: present only when it was a
// JSON number. Negative values clamp to 0, huge ones to maxCount, and a
// fractional one rounds up (charging a part token as a whole one).
type count struct {
	set bool
	v   int64
	bad bool // present but not a count the API can mean: negative, fractional or not a number
}

// parse reads one occurrence of the field; as in encoding/json, a later
// occurrence of a duplicated key replaces an earlier one.
func (c *count) parse(b []byte) {
	*c = count{}
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		// null is "not reported"; a string, a bool or an object is no
		// count at all: no change, but flagged.
		c.bad = len(b) > 0 && string(b) != "null"
		return
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err == nil {
		*c = count{set: true, v: clampCount(n), bad: n < 0}
		return
	}
	defer func() { c.bad = true }() // a fraction, an exponent or out of range
	f, ferr := strconv.ParseFloat(string(b), 64)
	if ferr != nil && !isRangeErr(ferr) {
		return
	}
	switch {
	case math.IsNaN(f) || f <= 0:
		*c = count{set: true, v: 0}
	case f >= float64(maxCount):
		*c = count{set: true, v: maxCount}
	default:
		*c = count{set: true, v: int64(math.Ceil(f))}
	}
}

func isRangeErr(err error) bool {
	return errors.Is(err, strconv.ErrRange)
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

func (t *text) parse(b []byte) {
	*t = text{}
	if len(b) < 2 || b[0] != '"' || len(b) > maxStringField*6+2 {
		return
	}
	s, ok := unquote(b)
	if ok && len(s) <= maxStringField {
		*t = text{set: true, v: s}
	}
}

// unquote decodes a JSON string literal.
func unquote(b []byte) (string, bool) {
	s, _, ok := jsonscan.Text(b)
	if !ok {
		return "", false
	}
	return intern(s), true
}

// intern returns the tier, geo and speed values every response carries
// without allocating a copy.
func intern(b []byte) string {
	switch string(b) {
	case "standard":
		return "standard"
	case "priority":
		return "priority"
	case "batch":
		return "batch"
	case "global":
		return "global"
	case "us":
		return "us"
	case "fast":
		return "fast"
	case "text": // content block types, read on every content_block_start
		return "text"
	case "tool_use":
		return "tool_use"
	}
	return string(b)
}

func decodeText(raw []byte) string {
	var t text
	if jsonscan.Valid(raw) {
		t.parse(raw)
	}
	return t.v
}

// wireUsage is a "usage" object, from a Message or a message_delta.
type wireUsage struct {
	set                             bool
	input, cacheCreation, cacheRead count
	output, thinking                count
	thinkingSet                     bool // output_tokens_details was an object
	split                           bool // cache_creation was an object
	eph5m, eph1h                    count
	serverTools                     bool // server_tool_use was an object
	webSearches, webFetches         count
	serviceTier, inferenceGeo       text
	speed                           text
	iterations                      string // the raw array
	iterSet                         bool   // iterations was an array
	invalid                         string // the first count that was not one
}

// parseUsage reads a usage object from valid JSON. A value that is not an
// object (null included) is "no usage".
func parseUsage(raw []byte) wireUsage {
	var w wireUsage
	w.set = jsonscan.Fields(raw, func(key, v []byte) {
		switch string(key) {
		case "input_tokens":
			w.input.parse(v)
		case "cache_creation_input_tokens":
			w.cacheCreation.parse(v)
		case "cache_read_input_tokens":
			w.cacheRead.parse(v)
		case "output_tokens":
			w.output.parse(v)
		case "cache_creation":
			w.eph5m, w.eph1h = count{}, count{}
			w.split = jsonscan.Fields(v, func(key, v []byte) {
				switch string(key) {
				case "ephemeral_5m_input_tokens":
					w.eph5m.parse(v)
				case "ephemeral_1h_input_tokens":
					w.eph1h.parse(v)
				}
			})
		case "output_tokens_details":
			w.thinking = count{}
			w.thinkingSet = jsonscan.Fields(v, func(key, v []byte) {
				if string(key) == "thinking_tokens" {
					w.thinking.parse(v)
				}
			})
		case "server_tool_use":
			w.webSearches, w.webFetches = count{}, count{}
			w.serverTools = jsonscan.Fields(v, func(key, v []byte) {
				switch string(key) {
				case "web_search_requests":
					w.webSearches.parse(v)
				case "web_fetch_requests":
					w.webFetches.parse(v)
				}
			})
		case "service_tier":
			w.serviceTier.parse(v)
		case "inference_geo":
			w.inferenceGeo.parse(v)
		case "speed":
			w.speed.parse(v)
		case "iterations":
			var inv string
			_, w.iterSet, inv = parseIterations(v)
			w.invalid = firstNonEmpty(w.invalid, inv)
			if w.iterSet {
				w.iterations = string(v)
			}
		}
	})
	for _, c := range []struct {
		name string
		c    count
	}{{"input_tokens", w.input}, {"cache_creation_input_tokens", w.cacheCreation}, {"cache_read_input_tokens", w.cacheRead},
		{"output_tokens", w.output}, {"cache_creation.ephemeral_5m_input_tokens", w.eph5m},
		{"cache_creation.ephemeral_1h_input_tokens", w.eph1h}, {"server_tool_use.web_search_requests", w.webSearches}} {
		if c.c.bad {
			w.invalid = firstNonEmpty(w.invalid, c.name)
		}
	}
	return w
}

// decodeUsage decodes one usage object into a fresh Usage. ok is false
// when raw is not valid JSON or not an object.
func decodeUsage(raw []byte) (Usage, bool) {
	u, _, ok := decodeUsageChecked(raw)
	return u, ok
}

// decodeUsageChecked is decodeUsage that also reports the usage's Validity.
func decodeUsageChecked(raw []byte) (Usage, Validity, bool) {
	w := parseUsage(raw) // w.set only when raw is valid JSON and an object
	if !w.set {
		return Usage{}, Validity{}, false
	}
	var u Usage
	var v Validity
	u.apply(&w)
	v.note(&w)
	return u, v, true
}

// apply overwrites every field of u that w carries. This is the SSE
// accumulation rule (message_delta counts are cumulative totals, omitted
// when they do not apply) and, applied to a zero Usage, a plain decode.
func (u *Usage) apply(w *wireUsage) {
	oldCacheCreation := u.CacheCreationInputTokens
	setInt(&u.InputTokens, w.input)
	setInt(&u.CacheCreationInputTokens, w.cacheCreation)
	setInt(&u.CacheReadInputTokens, w.cacheRead)
	setInt(&u.OutputTokens, w.output)
	if w.thinkingSet {
		setInt(&u.ThinkingTokens, w.thinking)
	}
	if w.serverTools {
		setInt(&u.WebSearchRequests, w.webSearches)
		setInt(&u.WebFetchRequests, w.webFetches)
	}
	setStr(&u.ServiceTier, w.serviceTier)
	setStr(&u.InferenceGeo, w.inferenceGeo)
	setStr(&u.Speed, w.speed)
	if w.iterSet {
		u.IterationsJSON = w.iterations
	}
	switch {
	case w.split:
		u.CacheCreationSplit = true
		setInt(&u.CacheWrite5mTokens, w.eph5m)
		setInt(&u.CacheWrite1hTokens, w.eph1h)
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
