// Package jsonscan validates JSON exactly as encoding/json's json.Valid
// does, several times faster, and finds member boundaries on the way.
//
// Request and response bodies are mostly string bytes, which it skips
// eight at a time. json.Valid was the largest single cost of admission
// (docs/perf-history.md), and a body's size is the client's to choose.
// FuzzValid holds it to json.Valid.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
)

// MaxDepth is encoding/json's nesting limit: a body nested deeper is
// invalid to it, so it must be to us.
const MaxDepth = 10000

// Valid reports whether b is one valid JSON value, as json.Valid does.
func Valid(b []byte) bool {
	var v Validator
	end, ok := v.ValueEnd(b, SkipSpace(b, 0), 0)
	return ok && SkipSpace(b, end) == len(b)
}

// Validator validates JSON and, on the way, notes whether any string (key
// or value) is one of Watch, so a caller that must know does not search
// the body a second time.
type Validator struct {
	Watch []string
	Seen  bool // a string in Watch was seen
	// Each keeps watching after the first hit, so Hits says which of Watch
	// (bit i for Watch[i], up to 64 names) were seen.
	Each bool
	Hits uint64
}

// ValueEnd validates the JSON value that starts at b[i] and returns the
// index just past it. depth is how many containers enclose it.
func (v *Validator) ValueEnd(b []byte, i, depth int) (int, bool) {
	var buf [32]bool
	open := buf[:0] // the containers entered here; true for an object
	for {
		// A value starts at i.
		if i >= len(b) {
			return 0, false
		}
		var ok bool
		switch c := b[i]; {
		case c == '{' || c == '[':
			if depth+len(open)+1 > MaxDepth {
				return 0, false
			}
			obj := c == '{'
			i = SkipSpace(b, i+1)
			if i < len(b) && b[i] == closer(obj) {
				i, ok = i+1, true // empty
				break
			}
			open = append(open, obj)
			if obj {
				if _, i, ok = v.MemberKey(b, i); !ok {
					return 0, false
				}
			}
			continue
		case c == '"':
			i, ok = v.stringEnd(b, i)
		case c == '-' || isDigit(c):
			i, ok = numberEnd(b, i)
		case c == 't':
			i, ok = literalEnd(b, i, "true")
		case c == 'f':
			i, ok = literalEnd(b, i, "false")
		case c == 'n':
			i, ok = literalEnd(b, i, "null")
		}
		if !ok {
			return 0, false
		}
		// A value ended at i: close what it completes, or find the next.
		for {
			if len(open) == 0 {
				return i, true
			}
			i = SkipSpace(b, i)
			if i >= len(b) {
				return 0, false
			}
			obj := open[len(open)-1]
			if b[i] == closer(obj) {
				open = open[:len(open)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return 0, false
			}
			i = SkipSpace(b, i+1)
			if obj {
				if _, i, ok = v.MemberKey(b, i); !ok {
					return 0, false
				}
			}
			break
		}
	}
}

func closer(obj bool) byte {
	if obj {
		return '}'
	}
	return ']'
}

// Members validates obj as one JSON document that is an object and calls
// fn with the raw (quoted) key and raw value of each member, in order. It
// reports whether obj was valid and an object; fn has then seen every
// member, and if not, it may have seen some: act on what it collected only
// when Members returns true.
func (v *Validator) Members(obj []byte, fn func(key, val []byte)) bool {
	i := SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	i = SkipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return SkipSpace(obj, i+1) == len(obj)
	}
	for {
		kEnd, vStart, ok := v.MemberKey(obj, i)
		if !ok {
			return false
		}
		vEnd, ok := v.ValueEnd(obj, vStart, 1)
		if !ok {
			return false
		}
		fn(obj[i:kEnd], obj[vStart:vEnd])
		i = SkipSpace(obj, vEnd)
		switch {
		case i < len(obj) && obj[i] == ',':
			i = SkipSpace(obj, i+1)
		case i < len(obj) && obj[i] == '}':
			return SkipSpace(obj, i+1) == len(obj)
		default:
			return false
		}
	}
}

// MemberKey validates `"key" :` at b[i] and returns where the key ends
// and where the value starts.
func (v *Validator) MemberKey(b []byte, i int) (keyEnd, value int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, 0, false
	}
	if keyEnd, ok = v.stringEnd(b, i); !ok {
		return 0, 0, false
	}
	i = SkipSpace(b, keyEnd)
	if i >= len(b) || b[i] != ':' {
		return 0, 0, false
	}
	return keyEnd, SkipSpace(b, i+1), true
}

// SkipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainWord reports whether none of the 8 bytes in v ends a run of plain
// string bytes: no quote, no backslash, no control byte. Each test is the
// classic has-zero-byte trick; a borrow can only start at a matching byte,
// so there are no false negatives and no false positives for the word.
func plainWord(v uint64) bool {
	q := v ^ (ones * '"')
	s := v ^ (ones * '\\')
	hit := (q - ones) &^ q
	hit |= (s - ones) &^ s
	hit |= (v - ones*0x20) &^ v
	return hit&highs == 0
}

// stringEnd validates the string that starts at b[i] (a quote) and
// returns the index just past its closing quote. Like encoding/json it
// rejects control bytes and bad escapes, and passes other bytes unchecked.
func (v *Validator) stringEnd(b []byte, i int) (int, bool) {
	start, escaped := i, false
	i++
	for {
		for i+8 <= len(b) && plainWord(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		if i >= len(b) {
			return 0, false
		}
		switch c := b[i]; {
		case c == '"':
			if len(v.Watch) > 0 && (!v.Seen || v.Each) {
				if hit := watched(b[start:i+1], escaped, v.Watch); hit >= 0 {
					v.Seen = true
					v.Hits |= 1 << uint(hit)
				}
			}
			return i + 1, true
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return 0, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return 0, false
				}
				i += 6
			default:
				return 0, false
			}
		case c < 0x20:
			return 0, false
		default:
			i++
		}
	}
}

// watched returns the index in names of the valid JSON string quoted, or
// -1 if it is none of them.
func watched(quoted []byte, escaped bool, names []string) int {
	s := quoted[1 : len(quoted)-1]
	if escaped {
		// An escape is 2 to 6 bytes for one character: only a string that
		// short can spell a name. Messages full of escaped code are not.
		if len(s) > 6*maxLen(names) {
			return -1
		}
		var u string
		if json.Unmarshal(quoted, &u) != nil {
			return -1
		}
		s = []byte(u)
	}
	for i, n := range names {
		if string(s) == n {
			return i
		}
	}
	return -1
}

func maxLen(names []string) int {
	n := 0
	for _, s := range names {
		n = max(n, len(s))
	}
	return n
}

// numberEnd validates the number that starts at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func numberEnd(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && isDigit(b[i]):
		i = digitsEnd(b, i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		if i+1 >= len(b) || !isDigit(b[i+1]) {
			return 0, false
		}
		i = digitsEnd(b, i+1)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return 0, false
		}
		i = digitsEnd(b, i)
	}
	return i, true
}

func digitsEnd(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

func literalEnd(b []byte, i int, lit string) (int, bool) {
	if !bytes.HasPrefix(b[i:], []byte(lit)) {
		return 0, false
	}
	return i + len(lit), true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
