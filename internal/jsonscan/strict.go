package jsonscan

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The spellings a price may be read from. The API reads a request with a
// case-sensitive, strict JSON parser; encoding/json matches keys
// case-insensitively and reads 1e3, 1000.0 and invalid UTF-8 in its own
// way. A value the gateway prices from is only accepted in the spelling
// every parser reads the same. Walk adds the other half: no key twice in
// one object.

// KeyForm is how a key, as read, relates to a field the gateway reads.
type KeyForm uint8

const (
	KeyOther       KeyForm = iota // another key
	KeyExact                      // the field, written plainly
	KeyEscaped                    // the field, written with escapes ("m\u006fdel")
	KeyCaseVariant                // the field in other case ("Model", "max_to\u212Aens"): encoding/json would take it for the field
)

// FormOf says how key (as Walk or Text read it, escaped as they report)
// relates to field.
func FormOf(key string, escaped bool, field string) KeyForm {
	switch {
	case key == field && escaped:
		return KeyEscaped
	case key == field:
		return KeyExact
	case strings.EqualFold(key, field):
		return KeyCaseVariant
	}
	return KeyOther
}

// maxCountDigits bounds a count: 18 digits always fit an int64.
const maxCountDigits = 18

// PlainCount reads a count from a raw JSON value: an integer in plain
// digits, without sign, fraction, exponent, quotes or leading zeros, of at
// most 18 digits. ok is false for any other spelling, even one that
// encoding/json reads as the same number.
func PlainCount(raw []byte) (n int64, ok bool) {
	if len(raw) == 0 || len(raw) > maxCountDigits || (raw[0] == '0' && len(raw) > 1) {
		return 0, false
	}
	for _, c := range raw {
		if !isDigit(c) {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, err == nil
}

// PlainString reads a string from a raw JSON value. isString is false
// when raw is not one JSON string; utf8OK is false when it is one but
// holds invalid UTF-8 or an escape that reads as U+FFFD (a lone
// surrogate, or U+FFFD itself), which encoding/json reads as U+FFFD and
// another parser may refuse or read otherwise.
func PlainString(raw []byte) (s string, isString, utf8OK bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false, false
	}
	if inner, ok := unescaped(raw); ok {
		// Read as encoding/json would, without its reflection: the string
		// is its bytes.
		if !utf8.Valid(inner) || bytes.ContainsRune(inner, utf8.RuneError) {
			return "", true, false
		}
		return string(inner), true, true
	}
	if json.Unmarshal(raw, &s) != nil {
		return "", false, false
	}
	if !utf8.Valid(raw) || strings.ContainsRune(s, utf8.RuneError) {
		return "", true, false
	}
	return s, true, true
}

// unescaped returns the bytes between the quotes of raw when raw is one
// JSON string with no escape, no control character and nothing after it.
func unescaped(raw []byte) ([]byte, bool) {
	n := len(raw)
	if n < 2 || raw[0] != '"' || raw[n-1] != '"' {
		return nil, false
	}
	inner := raw[1 : n-1]
	for _, c := range inner {
		if c < 0x20 || c == '"' || c == '\\' {
			return nil, false
		}
	}
	return inner, true
}
