package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"unicode/utf8"
)

// This is the one place that knows where a JSON string ends. The
// validator, the walker and the incremental TopLevel scanner all find
// string ends here, so what one of them takes for a string's bytes the
// others do too.

// strEnd is how a scan of a string's inside stopped.
type strEnd uint8

const (
	strClosed  strEnd = iota // at the closing quote
	strOpen                  // b ended inside the string
	strOpenEsc               // b ended right after a backslash: the next byte is escaped
	strBad                   // strict only: a control byte or an escape JSON does not have
)

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

// scanString scans the inside of a string from b[i], where i is just past
// the opening quote or past a whole escape, and returns the index just
// past the closing quote. Bodies are mostly string bytes, skipped eight at
// a time.
//
// strict is encoding/json's reading: a control byte, an escape JSON does
// not have, or b ending inside the string is strBad. Without strict,
// every byte but a quote and the byte after a backslash is passed, and
// when b ends first scanString returns len(b) with strOpen or strOpenEsc,
// so a caller reading a document in pieces resumes with the next piece
// (skipping its first byte after strOpenEsc). On valid JSON both find the
// same end; the lenient reading finds one in invalid JSON too, as a meter
// that must not lose counts beside a bad byte wants.
func scanString(b []byte, i int, strict bool) (int, strEnd) {
	for {
		for i+8 <= len(b) && plainWord(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		if i >= len(b) {
			if strict {
				return 0, strBad
			}
			return len(b), strOpen
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, strClosed
		case c == '\\':
			if !strict {
				if i+1 >= len(b) {
					return len(b), strOpenEsc
				}
				i += 2
				continue
			}
			if i+1 >= len(b) {
				return 0, strBad
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return 0, strBad
				}
				i += 6
			default:
				return 0, strBad
			}
		case c < 0x20:
			if strict {
				return 0, strBad
			}
			i++
		default:
			i++
		}
	}
}

// Text returns what encoding/json reads from the quoted JSON string
// (quotes included): escapes decoded, invalid UTF-8 replaced by U+FFFD.
// A string with neither, as every real key is, is returned in place
// without allocating. escaped reports whether it was written with
// escapes; ok is false when quoted is not one valid JSON string.
func Text(quoted []byte) (text []byte, escaped, ok bool) {
	if len(quoted) < 2 || quoted[0] != '"' {
		return nil, false, false
	}
	if end, st := scanString(quoted, 1, true); st != strClosed || end != len(quoted) {
		return nil, false, false
	}
	inner := quoted[1 : len(quoted)-1]
	escaped = bytes.IndexByte(inner, '\\') >= 0
	if !escaped && utf8.Valid(inner) {
		return inner, false, true
	}
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		return nil, escaped, false // cannot happen: the scan above is encoding/json's
	}
	return []byte(s), escaped, true
}

// watched returns the index in names of the valid JSON string quoted, as
// encoding/json reads it, or -1 if it is none of them.
func watched(quoted []byte, names []string) int {
	s := quoted[1 : len(quoted)-1]
	// An escape is 2 to 6 bytes for one byte of text, so a string longer
	// than 6 times the longest name spells none of them; messages full of
	// escaped code are not decoded.
	if len(s) > 6*maxLen(names) {
		return -1
	}
	s, _ = keyText(quoted) // as encoding/json reads it
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

func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
