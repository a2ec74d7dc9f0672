package proxy

import (
	"encoding/json"
	"strings"
	"testing"
)

// validJSON is json.Valid built on the validator.
func validJSON(b []byte) bool {
	var v validator
	end, ok := v.valueEnd(b, skipSpace(b, 0), 0)
	return ok && skipSpace(b, end) == len(b)
}

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

func TestValidatorMatchesEncodingJSON(t *testing.T) {
	cases := append([]string(nil), validCases...)
	// Every special byte at every offset of a word, so the eight-at-a-time
	// skip is exercised on both sides of each word boundary.
	for _, special := range []string{`"`, `\\`, `\"`, "\x00", "\x1f", " ", "\x7f", "\x80", `\u0041`, `\x`} {
		for pad := 0; pad < 17; pad++ {
			cases = append(cases, `"`+strings.Repeat("a", pad)+special+strings.Repeat("b", 9)+`"`)
		}
	}
	for _, d := range []int{maxDepth - 1, maxDepth, maxDepth + 1} {
		cases = append(cases, strings.Repeat("[", d)+strings.Repeat("]", d))
		cases = append(cases, strings.Repeat(`{"a":`, d-1)+"{}"+strings.Repeat("}", d-1))
		cases = append(cases, `{"x":`+strings.Repeat("[", d-1)+strings.Repeat("]", d-1)+"}")
	}
	for _, c := range cases {
		if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("%.80q: valid %v, encoding/json %v", c, got, want)
		}
	}
}

func TestValidatorDepthLimitIsEncodingJSONs(t *testing.T) {
	at := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	over := "[" + at + "]"
	if !validJSON([]byte(at)) || validJSON([]byte(over)) {
		t.Fatalf("depth %d valid %v, depth %d valid %v; want true, false",
			maxDepth, validJSON([]byte(at)), maxDepth+1, validJSON([]byte(over)))
	}
}

func FuzzValidator(f *testing.F) {
	for _, c := range validCases {
		f.Add([]byte(c))
	}
	for _, c := range slimCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("%q: valid %v, encoding/json %v", b, got, want)
		}
	})
}
