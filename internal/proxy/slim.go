package proxy

import (
	"encoding/json"

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
	if slim, ok := jsonscan.Slim(&v, body, "model", "max_tokens", "stream", "inference_geo", "speed", "tools", "thinking"); ok {
		return v.Hits, json.Unmarshal(slim, r)
	}
	return 0, json.Unmarshal(body, r) // not an object, or not JSON: its error
}

// keyIn reports whether the quoted JSON key names one of names, as
// encoding/json matches a struct field (jsonscan.KeyIn).
func keyIn(quoted []byte, names []string) bool { return jsonscan.KeyIn(quoted, names) }
