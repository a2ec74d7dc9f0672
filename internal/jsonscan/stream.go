package jsonscan

// TopLevel reads a JSON document in pieces, as it streams past, and hands
// back the raw bytes of the values of chosen top-level keys. It keeps only
// a small bounded key buffer and the capture of the value being captured,
// so a document of any size costs O(1) memory. It tracks nesting depth and
// string/escape state itself and never recurses, so hostile nesting cannot
// exhaust the stack. It finds string ends with the validator's scanner
// (scanString's lenient reading, which ends every valid string where the
// strict one does) but validates nothing: a response with one bad byte
// still has its usage read, and the values it captures are validated by
// their readers.
type TopLevel struct {
	keys   [MaxTopKeys]string // top-level keys whose values are captured
	limits [MaxTopKeys]int    // per key: the most raw bytes captured

	st    scanState
	depth int // nesting inside the current top-level value

	rawKey   [maxRawKey + 2]byte // quotes included
	rawKeyN  int
	keyLong  bool // the key did not fit rawKey: not one of ours
	slot     int  // index into keys of the value being read, or -1
	capture  []byte
	overflow bool // the captured value exceeded its limit
}

// MaxTopKeys is the most keys one TopLevel captures.
const MaxTopKeys = 3

// maxRawKey bounds a key as written, escapes included. The keys read are
// short ASCII words; even fully \u-escaped they fit.
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

// NewTopLevel captures the values of keys, each up to its limit. Arrays,
// not slices, so that building one allocates nothing.
func NewTopLevel(keys [MaxTopKeys]string, limits [MaxTopKeys]int) TopLevel {
	return TopLevel{keys: keys, limits: limits, slot: -1}
}

// Reset readies s for the next document, keeping its capture buffer.
func (s *TopLevel) Reset() {
	s.st, s.depth, s.slot = scStart, 0, -1
	s.capture = s.capture[:0]
}

// SetBuffer makes buf (from its length 0, up to its capacity before
// growing) where values are captured; nil drops the buffer.
func (s *TopLevel) SetBuffer(buf []byte) { s.capture = buf }

// Captured is the value Feed last reported: the index into keys of its
// key, and its raw bytes, or overflow when they exceeded the key's limit
// (raw is then empty). raw is valid until the next Feed.
func (s *TopLevel) Captured() (slot int, raw []byte, overflow bool) {
	return s.slot, s.capture, s.overflow
}

// inValue reports whether the scanner is inside a top-level value.
func (s *TopLevel) inValue() bool {
	return s.st >= scStr && s.st <= scScalar
}

// Complete reports whether a whole top-level object has been read with no
// trailing garbage so far.
func (s *TopLevel) Complete() bool { return s.st == scEnd }

// Done reports whether nothing more will be captured from this document:
// its object has ended, or it is not an object.
func (s *TopLevel) Done() bool { return s.st == scEnd || s.st == scBad }

// Feed consumes b until a captured value completes (then got is true and
// Captured describes it) or b runs out. n is the number of bytes
// consumed; call Feed again with b[n:].
func (s *TopLevel) Feed(b []byte) (n int, got bool) {
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
				s.addKey(b[i : i+1])
			case c == '}' && s.st == scKeyOrEnd:
				s.st = scEnd
			default:
				s.st = scBad
			}
			i++
		case scKey:
			end, st := scanString(b, i, false)
			if st == strClosed {
				s.addKey(b[i:end])
				s.st, i = scColon, end
				continue
			}
			s.addKey(b[i:])
			if st == strOpenEsc {
				s.st = scKeyEsc
			}
			i = len(b)
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
			end, st := scanString(b, i, false)
			if st != strClosed {
				if st == strOpenEsc {
					s.st++ // scStrEsc or scNestedEsc
				}
				i = len(b)
				continue
			}
			i = end
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

func (s *TopLevel) addKey(p []byte) {
	if s.keyLong || s.rawKeyN+len(p) > len(s.rawKey) {
		s.keyLong = true
		return
	}
	s.rawKeyN += copy(s.rawKey[s.rawKeyN:], p)
}

// beginValue decides whether the value about to start is captured.
func (s *TopLevel) beginValue() {
	s.slot, s.overflow = -1, false
	s.capture = s.capture[:0]
	if s.keyLong {
		return
	}
	// Rare and hostile, but encoding/json would unescape a key, so do the
	// same: "us\u0061ge" is the usage key.
	// No strict scan: a key that is not valid JSON reads as no name.
	key, _ := keyText(s.rawKey[:s.rawKeyN])
	for i, k := range s.keys {
		if k != "" && string(key) == k {
			s.slot = i
			return
		}
	}
}

// endValue closes the current value; it reports whether it was captured.
func (s *TopLevel) endValue(tail []byte) bool {
	s.st = scAfterVal
	if s.slot < 0 {
		return false
	}
	s.add(tail)
	return true
}

// add appends to the capture, never past the slot's limit.
func (s *TopLevel) add(p []byte) {
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
