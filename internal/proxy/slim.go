package proxy

import (
	"bytes"
	"encoding/json"
	"strings"
)

// decodeMessages decodes a Messages body into r exactly as
// json.Unmarshal(body, r) would, at a fraction of the cost for a long
// conversation: after one validation pass, the members admission does not
// read (messages, system, and so on) are skipped instead of decoded.
// Decoding the whole body was about half of the gateway's own CPU per
// request in the bench (bench/README.md).
func decodeMessages(body []byte, r *messageRequest) error {
	if json.Valid(body) {
		// The members admission reads whole. messages and mcp_servers are
		// only checked for presence, which an empty value of the same JSON
		// type keeps.
		if slim, ok := slimObject(body, "model", "max_tokens", "stream", "inference_geo", "speed", "tools"); ok {
			return json.Unmarshal(slim, r)
		}
	}
	return json.Unmarshal(body, r) // not an object, or not JSON: its error
}

// slimObject returns a copy of the JSON object obj (which must be valid
// JSON) in which every member whose key is not in keep has its string,
// object or array value replaced by an empty one of the same type ("", {},
// []); numbers, booleans and null are copied. Decoding the copy into a
// struct gives what decoding obj would: members stay in order with their
// keys as written, so duplicate keys (the last wins), escaped keys and the
// decoder's case-insensitive key match (bytes.EqualFold) all behave the
// same, and kept values carry their own type errors. ok is false if obj is
// not an object.
func slimObject(obj []byte, keep ...string) (slim []byte, ok bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil, false
	}
	out := make([]byte, 0, 256)
	out = append(out, '{')
	i++
	for n := 0; ; n++ {
		i = skipSpace(obj, i)
		if obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
		if obj[i] == '}' {
			break
		}
		kEnd := stringEnd(obj, i)
		key := obj[i:kEnd]
		i = skipSpace(obj, skipSpace(obj, kEnd)+1) // past ':'
		vEnd := valueEnd(obj, i)
		val := obj[i:vEnd]
		i = vEnd
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, key...)
		out = append(out, ':')
		switch {
		case keyIn(key, keep):
			out = append(out, val...)
		case val[0] == '"':
			out = append(out, `""`...)
		case val[0] == '{':
			out = append(out, `{}`...)
		case val[0] == '[':
			out = append(out, `[]`...)
		default:
			out = append(out, val...)
		}
	}
	return append(out, '}'), true
}

// keyIn reports whether the quoted JSON key names one of names, as
// encoding/json matches a struct field: unescaped, case-insensitively.
func keyIn(quoted []byte, names []string) bool {
	k := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(k, '\\') >= 0 {
		var s string
		if json.Unmarshal(quoted, &s) != nil {
			return true // cannot happen for valid JSON; keep the value
		}
		k = []byte(s)
	}
	for _, n := range names {
		if strings.EqualFold(string(k), n) {
			return true
		}
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string that starts at b[i].
func stringEnd(b []byte, i int) int {
	j := i + 1
	for {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			return len(b) // cannot happen for valid JSON
		}
		j += q
		esc := 0
		for k := j - 1; k > i && b[k] == '\\'; k-- {
			esc++
		}
		j++
		if esc%2 == 0 {
			return j
		}
	}
}

// valueEnd returns the index just past the value that starts at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); {
			switch b[j] {
			case '"':
				j = stringEnd(b, j)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
			j++
		}
		return len(b)
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	return j
}
