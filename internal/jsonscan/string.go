package jsonscan

import (
	"bytes"
	"encoding/binary"
	"math/bits"
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

// specials returns a mask with the high bit set in each of the 8 bytes of
// v (little-endian) that ends a run of plain string bytes: a quote, a
// backslash, a control byte. Each test is the classic has-zero-byte trick:
// a borrow can only start at a matching byte and only runs upward, so the
// lowest bit set is exactly the first such byte; higher ones may be false.
func specials(v uint64) uint64 {
	q := v ^ (ones * '"')
	s := v ^ (ones * '\\')
	hit := (q - ones) &^ q
	hit |= (s - ones) &^ s
	hit |= (v - ones*0x20) &^ v
	return hit & highs
}

func special(c byte) bool { return c == '"' || c == '\\' || c < 0x20 }

// scanString scans the inside of a string from b[i], where i is just past
// the opening quote or past a whole escape, and returns the index just
// past the closing quote.
//
// strict is encoding/json's reading: a control byte, an escape JSON does
// not have, or b ending inside the string is strBad. Without strict,
// every byte but a quote and the byte after a backslash is passed, and
// when b ends first scanString returns len(b) with strOpen or strOpenEsc,
// so a caller reading a document in pieces resumes with the next piece
// (skipping its first byte after strOpenEsc). On valid JSON both find the
// same end (FuzzScan holds them to it); the lenient reading finds one in
// invalid JSON too, as a meter that must not lose counts beside a bad byte
// wants.
//
// Bodies are mostly string bytes. The strict scan must look at every
// byte for control bytes and skips eight at a time; the lenient one only
// needs the quotes, which bytes.IndexByte finds at memory speed, so
// metering a long answer costs little.
func scanString(b []byte, i int, strict bool) (int, strEnd) {
	if !strict {
		return scanLenient(b, i)
	}
	for {
		// Skip to the next special byte, eight bytes at a time.
		for i+8 <= len(b) {
			if m := specials(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		for i < len(b) && !special(b[i]) {
			i++
		}
		if i >= len(b) {
			return 0, strBad
		}
		switch b[i] {
		case '"':
			return i + 1, strClosed
		case '\\':
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
		default: // a control byte
			return 0, strBad
		}
	}
}

// scanLenient is scanString without strict: the string ends at the first
// quote after i preceded by an even run of backslashes (not counting
// before i), which is where reading escapes forward ends it. One
// vectorised search for quotes is the whole cost of a string without
// them.
func scanLenient(b []byte, i int) (int, strEnd) {
	from := i
	for {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			if backslashRun(b, len(b), from)%2 == 1 {
				return len(b), strOpenEsc
			}
			return len(b), strOpen
		}
		q += i
		if backslashRun(b, q, from)%2 == 0 {
			return q + 1, strClosed
		}
		i = q + 1
	}
}

// backslashRun counts the backslashes right before b[at], not looking
// before b[from]. Runs end at quotes, so a scan counts each byte once.
func backslashRun(b []byte, at, from int) int {
	n := 0
	for at > from && b[at-1] == '\\' {
		at--
		n++
	}
	return n
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
	text, escaped = keyText(quoted)
	return text, escaped, true
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
