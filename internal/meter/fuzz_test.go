package meter

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func addFixtureSeeds(f *testing.F, pattern string) {
	for _, file := range fixtures(f, pattern) {
		b := readFile(f, file)
		f.Add(b, uint(len(b)/2))
		f.Add(b, uint(7))
	}
}

func FuzzSSEParser(f *testing.F) {
	addFixtureSeeds(f, "*.sse")
	f.Add([]byte("\xEF\xBB\xBFdata: {\"type\":\"message_stop\"}\r\n\r\n"), uint(3))
	f.Add([]byte("data\r\rdata:\n\n:\n"), uint(1))
	f.Add([]byte(startEvent+"data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":-1e99}}\r\r"), uint(40))
	f.Fuzz(func(t *testing.T, in []byte, split uint) {
		small := Limits{MaxLine: 48}
		for _, lim := range []Limits{DefaultLimits(), small} {
			p := NewSSEParser(lim)
			p.Write(in)
			whole := p.Result()
			if cap(p.buf) > lim.MaxLine {
				t.Fatalf("buffer capacity %d exceeds MaxLine %d", cap(p.buf), lim.MaxLine)
			}
			checkNonNegative(t, whole.Usage)
			if whole.StreamedOutputBytes < 0 || whole.StreamedOutputBytes > int64(len(in)) {
				t.Fatalf("StreamedOutputBytes %d outside [0, %d]", whole.StreamedOutputBytes, len(in))
			}
			i := int(split % uint(len(in)+1))
			if got := sseChunks(lim, in[:i], in[i:]); got != whole {
				t.Fatalf("split at %d changes the result: %s", i, cmp.Diff(whole, got))
			}
			j := i + int(split/7%uint(len(in)-i+1))
			if got := sseChunks(lim, in[:i], in[i:j], in[j:]); got != whole {
				t.Fatalf("split at %d,%d changes the result: %s", i, j, cmp.Diff(whole, got))
			}
			checkNonNegative(t, EstimateInterrupted(whole, int64(split)))
		}
		if want, ok := referenceSSE(in); ok {
			if got := sseChunks(DefaultLimits(), in); got != want {
				t.Fatalf("differs from the reference parser: %s", cmp.Diff(want, got))
			}
		}
	})
}

func FuzzJSONExtractor(f *testing.F) {
	addFixtureSeeds(f, "*.json")
	f.Add([]byte(`{"us\u0061ge":{"output_tokens":1},"model":"a\"b"}`), uint(9))
	f.Add([]byte(`{"a":"\\\\\"","usage":{"input_tokens":2}}`), uint(5))
	f.Fuzz(func(t *testing.T, in []byte, split uint) {
		lim := DefaultLimits()
		whole := jsonChunks(lim, in)
		checkNonNegative(t, whole.Usage)
		i := int(split % uint(len(in)+1))
		if got := jsonChunks(lim, in[:i], in[i:]); got != whole {
			t.Fatalf("split at %d changes the result: %s", i, cmp.Diff(whole, got))
		}
		if want, ok := referenceJSON(in, lim); ok && want != whole {
			t.Fatalf("differs from encoding/json: %s", cmp.Diff(want, whole))
		}
	})
}

func checkNonNegative(t *testing.T, u Usage) {
	t.Helper()
	for _, n := range []int64{u.InputTokens, u.CacheCreationInputTokens, u.CacheReadInputTokens, u.OutputTokens,
		u.ThinkingTokens, u.CacheWrite5mTokens, u.CacheWrite1hTokens, u.WebSearchRequests, u.WebFetchRequests} {
		if n < 0 || n > maxCount {
			t.Fatalf("count %d outside [0, 2^40] in %+v", n, u)
		}
	}
}

// referenceJSON is what encoding/json says the top-level usage, model and
// id of a valid document are. ok is false when the input is not valid JSON.
func referenceJSON(in []byte, lim Limits) (jsonGolden, bool) {
	if !json.Valid(in) {
		return jsonGolden{}, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(in, &m) != nil {
		return jsonGolden{}, true // valid but not an object: nothing
	}
	var g jsonGolden
	if raw, ok := m["usage"]; ok && len(raw) <= lim.MaxUsageBytes {
		g.Usage, g.Found = decodeUsage(raw)
	}
	g.Usage.Model = decodeText(m["model"])
	g.ID = decodeText(m["id"])
	return g, true
}

// referenceSSE is a deliberately naive event-stream parser over the whole
// input, written straight from the WHATWG algorithm. ok is false when some
// dispatched event's data is not valid JSON: the incremental parser decides
// an event's type from a prefix, which the reference cannot mirror.
func referenceSSE(in []byte) (StreamResult, bool) {
	in = bytes.TrimPrefix(in, []byte("\xEF\xBB\xBF"))
	var lines [][]byte
	for {
		i := bytes.IndexAny(in, "\r\n")
		if i < 0 {
			break // an unterminated last line is never processed
		}
		lines = append(lines, in[:i])
		if in[i] == '\r' && i+1 < len(in) && in[i+1] == '\n' {
			i++
		}
		in = in[i+1:]
	}
	var res StreamResult
	var data []byte
	hasData := false
	for _, l := range lines {
		switch {
		case len(l) == 0:
			if hasData {
				if !referenceDispatch(&res, data) {
					return StreamResult{}, false
				}
			}
			data, hasData = nil, false
		case l[0] == ':':
		default:
			field, value, found := bytes.Cut(l, []byte(":"))
			if found {
				value = bytes.TrimPrefix(value, []byte(" "))
			}
			if string(field) == "data" {
				if hasData {
					data = append(data, '\n')
				}
				data, hasData = append(data, value...), true
			}
		}
	}
	return res, true
}

func referenceDispatch(res *StreamResult, data []byte) bool {
	if !json.Valid(data) {
		return false
	}
	typ := firstTopLevelType(data)
	if len(data) > DefaultLimits().MaxLine {
		return false
	}
	switch typ {
	case "content_block_delta":
		res.StreamedOutputBytes += int64(len(data))
	case "message_stop":
		res.SawStop = true
	case "message_start", "message_delta", "error":
		types := map[string]eventType{"message_start": evMessageStart, "message_delta": evMessageDelta, "error": evError}
		p := &SSEParser{typ: types[typ], res: *res, buf: data}
		p.decode()
		*res = p.res
	}
	return true
}

// firstTopLevelType returns the first top-level "type" key's string value.
func firstTopLevelType(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return ""
		}
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return ""
		}
		if key == "type" {
			var s string
			if json.Unmarshal(v, &s) != nil {
				return ""
			}
			return s
		}
	}
	return ""
}

// FuzzDecodeUsage checks decodeUsage against encoding/json: reading a
// usage object field by field (jsonscan.Fields) must find what decoding
// it into maps finds, in any valid document.
func FuzzDecodeUsage(f *testing.F) {
	for _, file := range fixtures(f, "*.json") {
		var m map[string]json.RawMessage
		if json.Unmarshal(readFile(f, file), &m) == nil && m["usage"] != nil {
			f.Add([]byte(m["usage"]))
		}
	}
	f.Add([]byte(`{"input_tokens":5,"input_tokens":"x","cache_creation":{"ephemeral_1h_input_tokens":2},"cache_creation":null}`))
	f.Add([]byte(`{"server_tool_use":{"web_search_requests":1e2},"output_tokens_details":{"thinking_tokens":-3},"speed":"fa\u0073t"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, gotOK := decodeUsage(raw)
		checkNonNegative(t, got)
		want, wantOK := referenceUsage(raw)
		if gotOK != wantOK || got != want {
			t.Fatalf("decodeUsage(%q) = %+v, %v; encoding/json says %+v, %v", raw, got, gotOK, want, wantOK)
		}
	})
}

// referenceUsage decodes a usage object through encoding/json maps, using
// the same per-field rules (count.parse, text.parse) on the raw values.
func referenceUsage(raw []byte) (Usage, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return Usage{}, false
	}
	var w wireUsage
	w.set = true
	field := func(m map[string]json.RawMessage, key string, c *count) {
		if v, ok := m[key]; ok {
			c.parse(v)
		}
	}
	sub := func(key string) (map[string]json.RawMessage, bool) {
		var s map[string]json.RawMessage
		v, ok := m[key]
		return s, ok && json.Unmarshal(v, &s) == nil && s != nil
	}
	field(m, "input_tokens", &w.input)
	field(m, "cache_creation_input_tokens", &w.cacheCreation)
	field(m, "cache_read_input_tokens", &w.cacheRead)
	field(m, "output_tokens", &w.output)
	if s, ok := sub("cache_creation"); ok {
		w.split = true
		field(s, "ephemeral_5m_input_tokens", &w.eph5m)
		field(s, "ephemeral_1h_input_tokens", &w.eph1h)
	}
	if s, ok := sub("output_tokens_details"); ok {
		w.thinkingSet = true
		field(s, "thinking_tokens", &w.thinking)
	}
	if s, ok := sub("server_tool_use"); ok {
		w.serverTools = true
		field(s, "web_search_requests", &w.webSearches)
		field(s, "web_fetch_requests", &w.webFetches)
	}
	if v, ok := m["iterations"]; ok {
		if _, isArray, _ := parseIterations(v); isArray {
			w.iterSet, w.iterations = true, string(v)
		}
	}
	for key, t := range map[string]*text{"service_tier": &w.serviceTier, "inference_geo": &w.inferenceGeo, "speed": &w.speed} {
		if v, ok := m[key]; ok {
			t.parse(v)
		}
	}
	var u Usage
	u.apply(&w)
	return u, true
}
