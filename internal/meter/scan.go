package meter

import "bytes"

// topScanner walks a JSON document incrementally and hands back the raw
// bytes of the values of chosen top-level keys. It keeps only a small
// bounded key buffer and the capture of the value being captured, so a
// document of any size costs O(1) memory. It tracks nesting depth and
// string/escape state itself and never recurses, so hostile nesting cannot
// exhaust the stack. It does not validate numbers or literals: values it
// captures are decoded by encoding/json, which does.
type topScanner struct {
	keys   [maxKeys]string // top-level keys whose values are captured
	limits [maxKeys]int    // per key: the most raw bytes captured

	st    scanState
	depth int // nesting inside the current top-level value

	rawKey   [maxRawKey]byte
	rawKeyN  int
	keyLong  bool // the key did not fit rawKey: not one of ours
	slot     int  // index into keys of the value being read, or -1
	capture  []byte
	overflow bool // the captured value exceeded its limit
}

// maxKeys is the most keys one scanner captures.
const maxKeys = 3

// maxRawKey bounds a key as written, escapes included. Our keys are short
// ASCII words; even fully \u-escaped they fit.
const maxRawKey = 48

type scanState uint8

const (
	scStart     scanState = iota // before the top-level value
	scKeyOrEnd                   // after '{': a key or '}'
	scKey                        // inside a key string
	scKeyEsc                     // after '\' in a key
	scColon                      // after a key: ':'
	scValStart                   // after ':': the value
	scStr                        // inside a top-level string value
	scStrEsc                     // after '\' in it
	scNested                     // inside an object/array value, outside strings
	scNestedStr                  // inside a string within it
	scNestedEsc                  // after '\' in that string
	scScalar                     // inside a number or literal
	scAfterVal                   // after a value: ',' or '}'
	scNextKey                    // after ',': a key
	scEnd                        // after the top-level object
	scBad                        // not a JSON object: nothing more is found
)

// newTopScanner captures the values of keys, each up to its limit. Arrays,
// not slices, so that building one allocates nothing.
func newTopScanner(keys [maxKeys]string, limits [maxKeys]int) topScanner {
	return topScanner{keys: keys, limits: limits, slot: -1}
}

func (s *topScanner) reset() {
	s.st, s.depth, s.slot = scStart, 0, -1
	s.capture = s.capture[:0]
}

// inValue reports whether the scanner is inside a top-level value.
func (s *topScanner) inValue() bool {
	return s.st >= scStr && s.st <= scScalar
}

// complete reports whether a whole top-level object has been read with no
// trailing garbage so far.
func (s *topScanner) complete() bool { return s.st == scEnd }

// feed consumes b until a captured value completes (then got is true and
// s.slot, s.capture and s.overflow describe it) or b runs out. n is the
// number of bytes consumed; call feed again with b[n:].
func (s *topScanner) feed(b []byte) (n int, got bool) {
	from := 0 // start of the current value within b, while capturing
	i := 0
	for i < len(b) {
		c := b[i]
		switch s.st {
		case scStart:
			switch {
			case isSpace(c):
			case c == '{':
				s.st = scKeyOrEnd
			default:
				s.st = scBad
			}
			i++
		case scKeyOrEnd, scNextKey:
			switch {
			case isSpace(c):
			case c == '"':
				s.st, s.rawKeyN, s.keyLong = scKey, 0, false
			case c == '}' && s.st == scKeyOrEnd:
				s.st = scEnd
			default:
				s.st = scBad
			}
			i++
		case scKey:
			j := bytes.IndexAny(b[i:], "\"\\")
			if j < 0 {
				s.addKey(b[i:])
				i = len(b)
				continue
			}
			s.addKey(b[i : i+j])
			i += j
			if b[i] == '"' {
				s.st = scColon
			} else {
				s.addKey(b[i : i+1])
				s.st = scKeyEsc
			}
			i++
		case scKeyEsc:
			s.addKey(b[i : i+1])
			s.st = scKey
			i++
		case scColon:
			switch {
			case isSpace(c):
			case c == ':':
				s.st = scValStart
			default:
				s.st = scBad
			}
			i++
		case scValStart:
			if isSpace(c) {
				i++
				continue
			}
			s.beginValue()
			from = i
			switch c {
			case '"':
				s.st = scStr
				i++
			case '{', '[':
				s.st, s.depth = scNested, 1
				i++
			case '}', ']', ',', ':':
				s.st = scBad
			default:
				s.st = scScalar // the delimiter that ends it is not part of it
			}
		case scStr, scNestedStr:
			end, esc := skipString(b[i:])
			if end < 0 {
				if esc {
					s.st++ // scStrEsc or scNestedEsc
				}
				i = len(b)
				continue
			}
			i += end
			if s.st == scNestedStr {
				s.st = scNested
				continue
			}
			if s.endValue(b[from:i]) {
				return i, true
			}
		case scStrEsc, scNestedEsc:
			s.st-- // back into the string; \uXXXX digits need no care
			i++
		case scNested:
			switch c {
			case '"':
				s.st = scNestedStr
			case '{', '[':
				s.depth++
			case '}', ']':
				s.depth--
			}
			i++
			if s.depth == 0 && s.endValue(b[from:i]) {
				return i, true
			}
		case scScalar:
			if isSpace(c) || c == ',' || c == '}' || c == ']' {
				if s.endValue(b[from:i]) {
					return i, true
				}
				continue
			}
			i++
		case scAfterVal:
			switch {
			case isSpace(c):
			case c == ',':
				s.st = scNextKey
			case c == '}':
				s.st = scEnd
			default:
				s.st = scBad
			}
			i++
		case scEnd:
			if !isSpace(c) {
				s.st = scBad
			}
			i++
		case scBad:
			return len(b), false
		}
	}
	if s.slot >= 0 && s.inValue() {
		s.add(b[from:])
	}
	return len(b), false
}

func (s *topScanner) addKey(p []byte) {
	if s.keyLong || s.rawKeyN+len(p) > len(s.rawKey) {
		s.keyLong = true
		return
	}
	s.rawKeyN += copy(s.rawKey[s.rawKeyN:], p)
}

// beginValue decides whether the value about to start is captured.
func (s *topScanner) beginValue() {
	s.slot, s.overflow = -1, false
	s.capture = s.capture[:0]
	if s.keyLong {
		return
	}
	// Rare and hostile, but encoding/json would unescape a key, so do the
	// same: "us\u0061ge" is the usage key.
	key := unescapeKey(s.rawKey[:s.rawKeyN])
	for i, k := range s.keys {
		if k != "" && string(key) == k {
			s.slot = i
			return
		}
	}
}

// endValue closes the current value; it reports whether it was captured.
func (s *topScanner) endValue(tail []byte) bool {
	s.st = scAfterVal
	if s.slot < 0 {
		return false
	}
	s.add(tail)
	return true
}

// add appends to the capture, never past the slot's limit.
func (s *topScanner) add(p []byte) {
	if s.overflow {
		return
	}
	if len(s.capture)+len(p) > s.limits[s.slot] {
		s.overflow = true
		s.capture = s.capture[:0]
		return
	}
	s.capture = append(s.capture, p...)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// skipString looks for the quote closing a string in b, which starts inside
// the string and not in the middle of an escape. It returns the index just
// past that quote, or -1 and whether b ends in the middle of an escape.
// IndexByte is vectorised, so a 100 MB string is skipped at memory speed;
// a quote is escaped when an odd run of backslashes precedes it.
func skipString(b []byte) (end int, esc bool) {
	off := 0
	for {
		q := bytes.IndexByte(b[off:], '"')
		if q < 0 {
			return -1, backslashRun(b, len(b), off)%2 == 1
		}
		q += off
		if backslashRun(b, q, off)%2 == 0 {
			return q + 1, false
		}
		off = q + 1
	}
}

// backslashRun counts the backslashes right before b[at], not looking
// before b[from].
func backslashRun(b []byte, at, from int) int {
	n := 0
	for at > from && b[at-1] == '\\' {
		at--
		n++
	}
	return n
}
