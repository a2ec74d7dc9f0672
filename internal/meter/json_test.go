package meter

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestJSONExtractorCases(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		in     string
		want   jsonGolden
	}{
		{name: "only top-level usage counts", in: `{"content":[{"usage":{"output_tokens":5}}],"x":{"usage":{"output_tokens":6}}}`,
			want: jsonGolden{}},
		{name: "duplicate usage: the last wins", in: `{"usage":{"output_tokens":5},"usage":{"output_tokens":6}}`,
			want: jsonGolden{Usage: Usage{OutputTokens: 6}, Found: true}},
		{name: "duplicate usage: an unusable last one wins too", in: `{"usage":{"output_tokens":5},"usage":"none"}`,
			want: jsonGolden{}},
		{name: "usage not an object", in: `{"usage":[{"output_tokens":5}]}`, want: jsonGolden{}},
		{name: "null usage", in: `{"usage":null}`, want: jsonGolden{}},
		{name: "escaped key", in: `{"us\u0061ge":{"output_tokens":5},"\u006dodel":"m"}`,
			want: jsonGolden{Usage: Usage{Model: "m", OutputTokens: 5}, Found: true}},
		{name: "key that merely starts like usage", in: `{"usage_x":{"output_tokens":5},"usag":{"output_tokens":5}}`, want: jsonGolden{}},
		{name: "escaped model string", in: `{"model":"claude-\"x\"-\u00e9","usage":{}}`,
			want: jsonGolden{Usage: Usage{Model: `claude-"x"-é`}, Found: true}},
		{name: "model not a string", in: `{"model":5,"usage":{}}`, want: jsonGolden{Found: true}},
		{name: "truncated body keeps what was read", in: `{"id":"msg_1","usage":{"input_tokens":3},"content":[{"text":"cut he`,
			want: jsonGolden{Usage: Usage{InputTokens: 3}, Found: true, ID: "msg_1"}},
		{name: "usage cut mid-value is not found", in: `{"usage":{"input_tokens":3`, want: jsonGolden{}},
		{name: "top-level array", in: `[{"usage":{"input_tokens":3}}]`, want: jsonGolden{}},
		{name: "garbage after the object is ignored", in: `{"usage":{"input_tokens":3}} trailing`,
			want: jsonGolden{Usage: Usage{InputTokens: 3}, Found: true}},
		{name: "scalars next to usage", in: `{"a":true,"b":-1.5e3,"c":null,"usage":{"output_tokens":1},"d":[]}`,
			want: jsonGolden{Usage: Usage{OutputTokens: 1}, Found: true}},
		{name: "usage bigger than MaxUsageBytes is ignored", limits: Limits{MaxUsageBytes: 30},
			in: `{"usage":{"input_tokens":3,"output_tokens":4000000}}`, want: jsonGolden{}},
		{name: "usage exactly MaxUsageBytes", limits: Limits{MaxUsageBytes: len(`{"input_tokens":3}`)},
			in: `{"usage":{"input_tokens":3}}`, want: jsonGolden{Usage: Usage{InputTokens: 3}, Found: true}},
		{name: "backslashes before quotes", in: `{"t":"a\\","usage":{"input_tokens":1},"u":"b\\\"c\\\\","id":"x"}`,
			want: jsonGolden{Usage: Usage{InputTokens: 1}, Found: true, ID: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			if diff := cmp.Diff(tt.want, jsonChunks(tt.limits, in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got := jsonChunks(tt.limits, bytewise(in)...); got != tt.want {
				t.Errorf("byte by byte differs: %s", cmp.Diff(tt.want, got))
			}
		})
	}
}

func TestJSONExtractorClose(t *testing.T) {
	x := NewJSONExtractor(Limits{})
	x.Write([]byte(`{"usage":{"input_tokens":3}}`))
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Write([]byte(" ")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if u, ok := x.Result(); !ok || u.InputTokens != 3 {
		t.Errorf("Result after Close = %+v, %v", u, ok)
	}
}

func TestCountDecoding(t *testing.T) {
	tests := []struct {
		raw     string
		wantSet bool
		want    int64
	}{
		{"5", true, 5},
		{"0", true, 0},
		{"-5", true, 0},
		{"-0", true, 0},
		{"1099511627776", true, maxCount},
		{"1099511627777", true, maxCount},
		{"99999999999999999999", true, maxCount},
		{"-99999999999999999999", true, 0},
		{"1e3", true, 1000},
		{"2.5", true, 3},
		{"1e400", true, maxCount},
		{"-1e400", true, 0},
		{`"5"`, false, 0},
		{"null", false, 0},
		{"true", false, 0},
		{"{}", false, 0},
		{"[]", false, 0},
	}
	for _, tt := range tests {
		var c count
		c.parse([]byte(tt.raw))
		if c.set != tt.wantSet || c.v != tt.want {
			t.Errorf("%s: got (%v, %d), want (%v, %d)", tt.raw, c.set, c.v, tt.wantSet, tt.want)
		}
	}
}

// A message_delta that changes the cache-write total without a split puts
// the change where it costs most.
func TestCacheResplit(t *testing.T) {
	tests := []struct {
		name           string
		start, delta   string
		want5m, want1h int64
		wantSplit      bool
	}{
		{name: "growth goes to 1h", start: `"cache_creation_input_tokens":1500,"cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":500}`,
			delta: `"cache_creation_input_tokens":2300`, want5m: 1000, want1h: 1300, wantSplit: true},
		{name: "shrink takes 5m first", start: `"cache_creation_input_tokens":1500,"cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":500}`,
			delta: `"cache_creation_input_tokens":700`, want5m: 200, want1h: 500, wantSplit: true},
		{name: "shrink below the 1h part", start: `"cache_creation_input_tokens":1500,"cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":500}`,
			delta: `"cache_creation_input_tokens":300`, want5m: 0, want1h: 300, wantSplit: true},
		{name: "unchanged total keeps the split", start: `"cache_creation_input_tokens":1500,"cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":500}`,
			delta: `"cache_creation_input_tokens":1500`, want5m: 1000, want1h: 500, wantSplit: true},
		{name: "no split known: left to pricing (all 5m)", start: `"cache_creation_input_tokens":1500`,
			delta: `"cache_creation_input_tokens":2300`, wantSplit: false},
		{name: "a split in the delta is taken as is", start: `"cache_creation_input_tokens":1500,"cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":500}`,
			delta: `"cache_creation_input_tokens":2300,"cache_creation":{"ephemeral_5m_input_tokens":2000,"ephemeral_1h_input_tokens":300}`, want5m: 2000, want1h: 300, wantSplit: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := `data: {"type":"message_start","message":{"usage":{` + tt.start + `}}}` + "\n\n" +
				`data: {"type":"message_delta","usage":{` + tt.delta + `}}` + "\n\n"
			u := sseChunks(Limits{}, []byte(in)).Usage
			if u.CacheWrite5mTokens != tt.want5m || u.CacheWrite1hTokens != tt.want1h || u.CacheCreationSplit != tt.wantSplit {
				t.Errorf("split = (%d, %d, %v), want (%d, %d, %v)", u.CacheWrite5mTokens, u.CacheWrite1hTokens, u.CacheCreationSplit, tt.want5m, tt.want1h, tt.wantSplit)
			}
		})
	}
}

func TestParseBatchResultLineErrors(t *testing.T) {
	for _, line := range []string{
		``,
		`not json`,
		`{"custom_id":"a"}`,
		`{"result":{"type":"canceled"}}`,
		`{"custom_id":5,"result":{"type":"canceled"}}`,
		`{"custom_id":"a","result":{"type":"exploded"}}`,
		`{"custom_id":"a","result":{"type":"succeeded"}}`,
		`{"custom_id":"a","result":{"type":"succeeded","message":{"model":"m"}}}`,
		`{"custom_id":"a","result":{"type":"succeeded","message":{"usage":"none"}}}`,
		`{"custom_id":"a","result":{"type":"canceled"}} {}`,
		strings.Repeat("[", 100),
	} {
		if r, err := ParseBatchResultLine([]byte(line)); !errors.Is(err, ErrBatchLine) {
			t.Errorf("%q: got %+v, %v; want ErrBatchLine", line, r, err)
		}
	}
}
