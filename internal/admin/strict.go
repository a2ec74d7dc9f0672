package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// decodeStrictStrings parses body as one JSON object whose members are all
// strings and whose keys are exactly among allowed: written as they are
// (case-sensitive, no escapes standing in for letters), each at most once,
// with nothing but whitespace after the object. encoding/json alone
// matches keys case-insensitively, keeps the last of duplicate keys and
// stops reading at the end of the first value.
func decodeStrictStrings(body []byte, allowed ...string) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("the body must be one JSON object")
	}
	out := map[string]string{}
	for dec.More() {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("malformed JSON: %w", err)
		}
		key, _ := tok.(string)
		raw := bytes.Trim(body[start:dec.InputOffset()], " \t\r\n,")
		if string(raw) != `"`+key+`"` || !contains(allowed, key) {
			return nil, fmt.Errorf("unknown field %s (fields are case-sensitive and written without escapes)", safeKey(raw))
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("field %q appears more than once", key)
		}
		var v string
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("field %q must be a JSON string", key)
		}
		out[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON object")
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// safeKey bounds what of a caller's key is echoed back.
func safeKey(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "..."
	}
	return string(raw)
}
