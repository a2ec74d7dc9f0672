package jsonscan

import "testing"

// PlainString reads a string without escapes from its bytes and any other
// through encoding/json; both ways give encoding/json's reading.
func TestPlainString(t *testing.T) {
	for _, tc := range []struct {
		raw              string
		s                string
		isString, utf8OK bool
	}{
		{`"claude-sonnet-4-6"`, "claude-sonnet-4-6", true, true},
		{`""`, "", true, true},
		{`"日本"`, "日本", true, true},
		{"\"\xff\"", "", true, false},         // invalid UTF-8
		{"\"\xef\xbf\xbd\"", "", true, false}, // U+FFFD itself
		{`"\ufffd"`, "", true, false},
		{`"\ud800"`, "", true, false}, // a lone surrogate
		{`"a\u0062"`, "ab", true, true},
		{`"a\"b"`, `a"b`, true, true},
		{`"ab" `, "ab", true, true}, // encoding/json allows space after the value
		{`"a"b"`, "", false, false},
		{"\"a\tb\"", "", false, false}, // a raw control character
		{`"abc`, "", false, false},
		{`"`, "", false, false},
		{`7`, "", false, false},
	} {
		s, isString, utf8OK := PlainString([]byte(tc.raw))
		if s != tc.s || isString != tc.isString || utf8OK != tc.utf8OK {
			t.Errorf("PlainString(%s) = %q, %v, %v; want %q, %v, %v", tc.raw, s, isString, utf8OK, tc.s, tc.isString, tc.utf8OK)
		}
	}
}
