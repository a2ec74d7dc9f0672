package meter

import (
	"bytes"
	"encoding/json"

	"github.com/clade-gateway/clade-gateway/internal/jsonscan"
)

// members calls fn with the key (unescaped) and raw value of each member
// of the JSON object obj, in order, and reports whether obj is an object.
// obj must be valid JSON (callers check with jsonscan.Valid first); on
// anything else it stops early rather than panicking.
func members(obj []byte, fn func(key, val []byte)) bool {
	i := jsonscan.SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	i++
	for {
		i = jsonscan.SkipSpace(obj, i)
		if i < len(obj) && obj[i] == ',' {
			i = jsonscan.SkipSpace(obj, i+1)
		}
		if i >= len(obj) || obj[i] != '"' {
			return true // '}' or, on invalid input, the end
		}
		kEnd := valueEnd(obj, i)
		if kEnd < 0 {
			return true
		}
		key := unescapeKey(obj[i+1 : kEnd-1])
		i = jsonscan.SkipSpace(obj, kEnd)
		if i >= len(obj) || obj[i] != ':' {
			return true
		}
		i = jsonscan.SkipSpace(obj, i+1)
		vEnd := valueEnd(obj, i)
		if vEnd < 0 {
			return true
		}
		fn(key, obj[i:vEnd])
		i = vEnd
	}
}

// valueEnd returns the index just past the JSON value starting at b[i], or
// -1 if it does not end within b.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := skipString(b[i+1:])
		if end < 0 {
			return -1
		}
		return i + 1 + end
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, _ := skipString(b[i+1:])
				if end < 0 {
					return -1
				}
				i += end
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	for j := i; j < len(b); j++ {
		if c := b[j]; isSpace(c) || c == ',' || c == '}' || c == ']' {
			return j
		}
	}
	return len(b)
}

// unescapeKey returns a key as encoding/json would read it. Real keys have
// no escapes, so this allocates only for hostile input.
func unescapeKey(k []byte) []byte {
	if bytes.IndexByte(k, '\\') < 0 {
		return k
	}
	var s string
	q := append(append(append(make([]byte, 0, len(k)+2), '"'), k...), '"')
	if json.Unmarshal(q, &s) != nil {
		return nil
	}
	return []byte(s)
}
