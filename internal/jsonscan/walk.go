package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// The walker: Members and Elements hand over one level of a document,
// Fields with its keys as read, and Walk the whole structure with every
// object's keys held unique. All validate as they go, with the scans
// valid.go and string.go define, so a caller never walks bytes that
// Valid would refuse.

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

// Fields is Members with each key as encoding/json reads it (see Text),
// for a caller that matches keys exactly. As there, a duplicated key is
// handed over each time; the last is the one encoding/json keeps.
func Fields(obj []byte, fn func(key, val []byte)) bool {
	var v Validator
	return v.Members(obj, func(key, val []byte) {
		k, _ := keyText(key)
		fn(k, val)
	})
}

// Elements validates arr as one JSON document that is an array and calls
// fn with each element as written, in order. As with Members, act on what
// fn collected only when it returns true.
func Elements(arr []byte, fn func(val []byte)) bool {
	var v Validator
	i := SkipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return false
	}
	i = SkipSpace(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return SkipSpace(arr, i+1) == len(arr)
	}
	for {
		end, ok := v.ValueEnd(arr, i, 1)
		if !ok {
			return false
		}
		fn(arr[i:end])
		i = SkipSpace(arr, end)
		switch {
		case i < len(arr) && arr[i] == ',':
			i = SkipSpace(arr, i+1)
		case i < len(arr) && arr[i] == ']':
			return SkipSpace(arr, i+1) == len(arr)
		default:
			return false
		}
	}
}

// keyText is Text for a string a scan has already delimited, without
// scanning it again. A string that is not valid JSON reads as nil.
func keyText(quoted []byte) (key []byte, escaped bool) {
	inner := quoted[1 : len(quoted)-1]
	escaped = bytes.IndexByte(inner, '\\') >= 0
	if !escaped && utf8.Valid(inner) {
		return inner, false
	}
	// A copy, so that quoted does not escape: TopLevel reads keys out of
	// its own buffer, and a meter that stays on its caller's stack costs
	// no allocation.
	var s string
	if json.Unmarshal(bytes.Clone(quoted), &s) != nil {
		return nil, escaped
	}
	return []byte(s), escaped
}

// Visitor is told a document's structure by Walk, in document order.
type Visitor interface {
	// Open starts an object (obj) or an array. A member's value is opened
	// after its Key.
	Open(obj bool)
	// Key is the key of the member whose value comes next, as encoding/json
	// reads it; escaped reports whether it was written with escapes.
	Key(key []byte, escaped bool)
	// Value is a whole member value or array element as written, after
	// the Open and Close of its own when it is a container.
	Value(raw []byte)
	// Close ends the object or array last opened.
	Close(obj bool)
}

// ErrInvalid is Walk's answer to a document that is not valid JSON.
var ErrInvalid = errors.New("not valid JSON")

// DuplicateKeyError is a key that appears twice in one object.
type DuplicateKeyError struct {
	Key string // as read: escapes decoded
}

func (e *DuplicateKeyError) Error() string {
	return "duplicate key " + strconv.Quote(e.Key)
}

// Walk validates b as one JSON document, as Valid does, and tells v its
// structure. It refuses a key that appears twice in one object, as
// encoding/json reads keys: "a" and "\u0061" are one key, and so are two
// spellings of invalid UTF-8 that both read as U+FFFD. Parsers disagree on
// which of two such members wins, and a document without them means the
// same to all of them. It returns ErrInvalid or a *DuplicateKeyError at
// the first fault in document order; v may have been told part of the
// document by then. Containers recurse, so the stack depth is the
// document's, which MaxDepth bounds.
func Walk(b []byte, v Visitor) error {
	_, err := WalkWatched(b, v, nil)
	return err
}

// WalkWatched is Walk that also reports which of watch (bit i for
// watch[i], up to 64 names) the document holds as a key or a string value,
// as a Validator with Watch and Each reads them: one pass for both.
func WalkWatched(b []byte, v Visitor, watch []string) (hits uint64, err error) {
	w := walker{vis: v, v: Validator{Watch: watch, Each: true}}
	end, err := w.value(b, SkipSpace(b, 0), 0)
	if err != nil {
		return 0, err
	}
	if SkipSpace(b, end) != len(b) {
		return 0, ErrInvalid
	}
	return w.v.Hits, nil
}

type walker struct {
	v   Validator
	vis Visitor
}

// value walks the value at b[i]; depth is how many containers enclose it.
func (w *walker) value(b []byte, i, depth int) (int, error) {
	if i < len(b) {
		switch b[i] {
		case '{':
			return w.object(b, i, depth)
		case '[':
			return w.array(b, i, depth)
		}
	}
	end, ok := w.v.ValueEnd(b, i, depth)
	if !ok {
		return 0, ErrInvalid
	}
	return end, nil
}

func (w *walker) array(b []byte, i, depth int) (int, error) {
	if depth+1 > MaxDepth {
		return 0, ErrInvalid
	}
	w.vis.Open(false)
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		w.vis.Close(false)
		return i + 1, nil
	}
	for {
		end, err := w.value(b, i, depth+1)
		if err != nil {
			return 0, err
		}
		w.vis.Value(b[i:end])
		i = SkipSpace(b, end)
		switch {
		case i < len(b) && b[i] == ',':
			i = SkipSpace(b, i+1)
		case i < len(b) && b[i] == ']':
			w.vis.Close(false)
			return i + 1, nil
		default:
			return 0, ErrInvalid
		}
	}
}

func (w *walker) object(b []byte, i, depth int) (int, error) {
	if depth+1 > MaxDepth {
		return 0, ErrInvalid
	}
	w.vis.Open(true)
	// The keys seen so far: compared in a row while few (most objects),
	// then in a map.
	var small [16][]byte
	keys := small[:0]
	var many map[string]struct{}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		w.vis.Close(true)
		return i + 1, nil
	}
	for {
		kEnd, vStart, ok := w.v.MemberKey(b, i)
		if !ok {
			return 0, ErrInvalid
		}
		k, esc := keyText(b[i:kEnd])
		switch {
		case many != nil:
			if _, dup := many[string(k)]; dup {
				return 0, &DuplicateKeyError{Key: string(k)}
			}
			many[string(k)] = struct{}{}
		case len(keys) < len(small):
			for _, o := range keys {
				if bytes.Equal(o, k) {
					return 0, &DuplicateKeyError{Key: string(k)}
				}
			}
			keys = append(keys, k)
		default:
			many = make(map[string]struct{}, 2*len(small))
			for _, o := range keys {
				many[string(o)] = struct{}{}
			}
			if _, dup := many[string(k)]; dup {
				return 0, &DuplicateKeyError{Key: string(k)}
			}
			many[string(k)] = struct{}{}
		}
		w.vis.Key(k, esc)
		end, err := w.value(b, vStart, depth+1)
		if err != nil {
			return 0, err
		}
		w.vis.Value(b[vStart:end])
		i = SkipSpace(b, end)
		switch {
		case i < len(b) && b[i] == ',':
			i = SkipSpace(b, i+1)
		case i < len(b) && b[i] == '}':
			w.vis.Close(true)
			return i + 1, nil
		default:
			return 0, ErrInvalid
		}
	}
}
