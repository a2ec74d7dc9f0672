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
	if slim, ok := jsonscan.Slim(&v, body, admittedFields...); ok {
		return v.Hits, json.Unmarshal(slim, r)
	}
	return 0, json.Unmarshal(body, r) // not an object, or not JSON: its error
}

// admittedFields are the members admission decodes whole. messages and
// mcp_servers are only checked for presence, which an empty value of the
// same JSON type keeps.
var admittedFields = []string{"model", "max_tokens", "stream", "inference_geo", "speed", "tools", "thinking"}

// walkMessages reads a Messages body in one pass where decodeWatched and
// checkDuplicates take two (for a long conversation the second pass was a
// third of admission's parsing): the walk that refuses duplicated keys
// and notes what the conversation points at also watches the strings, and
// r is decoded from the top-level members it kept (decodeTop), or when
// they are spelled in a way only encoding/json should read, from a slim
// copy built from them, the copy decodeWatched decodes; err is that
// decoding's.
//
// walked is false when the walk refuses the body (not JSON, a duplicated
// key; err says which) or the body is not an object. The caller then
// takes the two passes, whose errors, encoding/json's and then the
// duplicate key after the field checks, are what a client gets.
func walkMessages(body []byte, r *messageRequest, watch []string) (scan bodyScan, hits uint64, walked bool, err error) {
	if i := jsonscan.SkipSpace(body, 0); i >= len(body) || body[i] != '{' {
		return bodyScan{}, 0, false, nil
	}
	w := newContentWalk()
	hits, err = jsonscan.WalkWatched(body, w, watch)
	if err != nil {
		return bodyScan{}, 0, false, err
	}
	if decodeTop(w.top, r) {
		return bodyScan{content: w.scan, top: w.top}, hits, true, nil
	}
	*r = messageRequest{}
	slim := append(make([]byte, 0, 256), '{')
	var keyBuf [64]byte
	quoted := keyBuf[:0]
	for _, m := range w.top {
		if m.escaped {
			// The key as encoding/json read it, quoted again: the same
			// field to the decoder.
			quoted, _ = json.Marshal(m.key)
		} else {
			quoted = append(append(append(quoted[:0], '"'), m.key...), '"')
		}
		slim = jsonscan.AppendSlimMember(slim, quoted, m.val, admittedFields)
	}
	slim = append(slim, '}')
	return bodyScan{content: w.scan, top: w.top}, hits, true, json.Unmarshal(slim, r)
}

// keyIn reports whether the quoted JSON key names one of names, as
// encoding/json matches a struct field (jsonscan.KeyIn).
func keyIn(quoted []byte, names []string) bool { return jsonscan.KeyIn(quoted, names) }
