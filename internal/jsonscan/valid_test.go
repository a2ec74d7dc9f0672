package jsonscan

import (
	"bytes"
	"encoding/json"
	"reflect"
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

// checkMembers holds Members to encoding/json: it succeeds exactly on a
// valid object, and then hands over every member, keys and values as
// written (so duplicates and escapes are the caller's to read).
func checkMembers(t *testing.T, b []byte) {
	t.Helper()
	var want []json.RawMessage
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	isObject := json.Valid(b) && len(trimmed) > 0 && trimmed[0] == '{'
	if isObject {
		dec := json.NewDecoder(bytes.NewReader(b))
		_, _ = dec.Token() // {
		for dec.More() {
			k, _ := dec.Token()
			var v json.RawMessage
			_ = dec.Decode(&v)
			// The key as JSON: strconv.Quote writes Go escapes (\x7f) that
			// are not JSON.
			kj, _ := json.Marshal(k.(string))
			want = append(want, json.RawMessage(kj), v)
		}
	}
	var v Validator
	var got [][]byte
	ok := v.Members(b, func(key, val []byte) { got = append(got, key, val) })
	if ok != isObject {
		t.Fatalf("%q: Members %v, a valid object %v", b, ok, isObject)
	}
	if !ok {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d keys and values, encoding/json %d", b, len(got), len(want))
	}
	for i := range got {
		var g, w any
		if json.Unmarshal(got[i], &g) != nil || json.Unmarshal(want[i], &w) != nil || !reflect.DeepEqual(g, w) {
			t.Fatalf("%q: member part %d is %s, encoding/json %s", b, i, got[i], want[i])
		}
	}
}

func TestMembersMatchesEncodingJSON(t *testing.T) {
	for _, c := range append(validCases,
		`{"a":1,"a":2}`, `{"k\u0065y":"v"}`, ` {"x":{"y":[1,{"z":null}]},"w":"\"}"} `, `[{"a":1}]`, `{"a":1}x`) {
		checkMembers(t, []byte(c))
	}
}
