package proxy

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/clade-gateway/clade-gateway/internal/jsonscan"
)

// decodeMessages decodes a Messages body into r exactly as
// json.Unmarshal(body, r) would, at a fraction of the cost for a long
// conversation: one pass validates the body and copies out the members
// admission reads; the rest (messages, system, and so on) is never decoded.
// Decoding the whole body was about half of the gateway's own CPU per
// request in the bench, and json.Valid most of the rest (docs/perf-history.md).
// seen reports whether any string in the body, key or value, is one of
// watch; it is only meaningful when err is nil and the body is an object.
func decodeMessages(body []byte, r *messageRequest, watch ...string) (seen bool, err error) {
	hits, err := decodeWatched(body, r, watch)
	return hits != 0, err
}

// decodeWatched is decodeMessages reporting which of watch (bit i for
// watch[i]) were seen.
func decodeWatched(body []byte, r *messageRequest, watch []string) (hits uint64, err error) {
	// The members admission reads whole. messages and mcp_servers are only
	// checked for presence, which an empty value of the same JSON type keeps.
	v := jsonscan.Validator{Watch: watch, Each: true}
	if slim, ok := slimObject(&v, body, "model", "max_tokens", "stream", "inference_geo", "speed", "tools", "thinking"); ok {
		return v.Hits, json.Unmarshal(slim, r)
	}
	return 0, json.Unmarshal(body, r) // not an object, or not JSON: its error
}

// slimObject validates obj as json.Valid would and returns a copy of it in
// which every member whose key is not in keep has its string, object or
// array value replaced by an empty one of the same type ("", {}, []);
// numbers, booleans and null are copied. Decoding the copy into a struct
// gives what decoding obj would: members stay in order with their keys as
// written, so duplicate keys (the last wins), escaped keys and the
// decoder's case-insensitive key match (bytes.EqualFold) all behave the
// same, and kept values carry their own type errors. ok is false if obj is
// not valid JSON or not an object.
func slimObject(v *jsonscan.Validator, obj []byte, keep ...string) (slim []byte, ok bool) {
	out := append(make([]byte, 0, 256), '{')
	ok = v.Members(obj, func(key, val []byte) {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(out, key...), ':')
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
	})
	if !ok {
		return nil, false
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
