// Package jsonscan is all the gateway's byte-level JSON: what it prices
// from request bodies and meters from responses must be what the API and
// encoding/json read, so it is read in one place, with one string scanner
// (string.go) and one walker (walk.go).
//
//   - Valid and Validator validate exactly as json.Valid does, several
//     times faster: bodies are mostly string bytes, skipped eight at a
//     time. json.Valid was the largest single cost of admission
//     (docs/perf-history.md), and a body's size is the client's to choose.
//   - Members, Fields, Elements and Walk hand over a document's members and
//     structure as they validate; Walk refuses a key twice in one object.
//   - TopLevel captures chosen top-level values of a response as it
//     streams past, in constant memory.
//   - Slim, KeyIn, FormOf, PlainCount and PlainString are the slim view of a
//     request and the spellings a price may be read from.
//
// FuzzScan holds every entry point to encoding/json's decoder and to the
// strictness rules.
package jsonscan

import "bytes"

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

// stringEnd validates the string that starts at b[i] (a quote) and
// returns the index just past its closing quote. Like encoding/json it
// rejects control bytes and bad escapes, and passes other bytes unchecked.
func (v *Validator) stringEnd(b []byte, i int) (int, bool) {
	end, st := scanString(b, i+1, true)
	if st != strClosed {
		return 0, false
	}
	if len(v.Watch) > 0 && (!v.Seen || v.Each) {
		if hit := watched(b[i:end], v.Watch); hit >= 0 {
			v.Seen = true
			v.Hits |= 1 << uint(hit)
		}
	}
	return end, true
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
