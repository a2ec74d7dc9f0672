package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
)

// validCases are where a hand-written validator and encoding/json's state
// machine could disagree.
var validCases = []string{
	``, ` `, `x`, `{}`, `[]`, ` { } `, `[ ]`, `{,}`, `[,]`, `[1,]`, `{"a":1,}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{1:2}`,
	`[1 2]`, `{"a":1 "b":2}`, `{"a":1}}`, `[[]`, `[]]`, `"`, `"\"`, `"\\"`, `"a\qb"`, `"\u12"`, `"\u12g4"`, `"\uABCD\uabcd"`,
	`"\/\b\f\n\r\t"`, "\"\x00\"", "\"\x1f\"", "\" \x7f\x80\xff\"", "\"tab\there\"", `0`, `-0`, `-`, `01`, `-01`, `1.`, `.5`, `1.5`,
	`1e`, `1e+`, `1e+5`, `1E-05`, `1.5e3`, `-1.0e-0`, `+1`, `1x`, `true`, `tru`, `truex`, `false`, `null`, `nul`, `True`,
	`[true,false,null]`, `{"a":[{"b":{"c":[1,"2",null]}}]}`, "\t\n\r [1]\r\n", "\v1", `1 2`, `"a" "b"`,
	`{"a":"b","c":{"d":[]}, "e" : [ 1 , { } ] }`,
}

func TestValidMatchesEncodingJSON(t *testing.T) {
	cases := append([]string(nil), validCases...)
	// Every special byte at every offset of a word, so the eight-at-a-time
	// skip is exercised on both sides of each word boundary.
	for _, special := range []string{`"`, `\\`, `\"`, "\x00", "\x1f", " ", "\x7f", "\x80", `\u0041`, `\x`} {
		for pad := 0; pad < 17; pad++ {
			cases = append(cases, `"`+strings.Repeat("a", pad)+special+strings.Repeat("b", 9)+`"`)
		}
	}
	for _, d := range []int{MaxDepth - 1, MaxDepth, MaxDepth + 1} {
		cases = append(cases, strings.Repeat("[", d)+strings.Repeat("]", d))
		cases = append(cases, strings.Repeat(`{"a":`, d-1)+"{}"+strings.Repeat("}", d-1))
		cases = append(cases, `{"x":`+strings.Repeat("[", d-1)+strings.Repeat("]", d-1)+"}")
	}
	for _, c := range cases {
		if got, want := Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("%.80q: valid %v, encoding/json %v", c, got, want)
		}
	}
}

func TestValidDepthLimitIsEncodingJSONs(t *testing.T) {
	at := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	over := "[" + at + "]"
	if !Valid([]byte(at)) || Valid([]byte(over)) {
		t.Fatalf("depth %d valid %v, depth %d valid %v; want true, false",
			MaxDepth, Valid([]byte(at)), MaxDepth+1, Valid([]byte(over)))
	}
}

func FuzzValid(f *testing.F) {
	for _, c := range validCases {
		f.Add([]byte(c))
	}
	f.Add([]byte(`{"model":"claude-\u0073onnet-4-6","max_tokens":1024,"messages":[{"role":"user","content":"a \"q\" \\"}]}`))
	f.Add([]byte(`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("%q: valid %v, encoding/json %v", b, got, want)
		}
	})
}
