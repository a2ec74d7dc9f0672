package jsonscan

import "strings"

// Slim validates obj as json.Valid would and returns a copy of it in
// which every member whose key is not in keep has its string, object or
// array value replaced by an empty one of the same type ("", {}, []);
// numbers, booleans and null are copied. Decoding the copy into a struct
// gives what decoding obj would: members stay in order with their keys as
// written, so duplicate keys (the last wins), escaped keys and the
// decoder's case-insensitive key match (see KeyIn) all behave the same,
// and kept values carry their own type errors. ok is false if obj is not
// valid JSON or not an object. v watches strings as it validates.
func Slim(v *Validator, obj []byte, keep ...string) (slim []byte, ok bool) {
	out := append(make([]byte, 0, 256), '{')
	ok = v.Members(obj, func(key, val []byte) {
		out = AppendSlimMember(out, key, val, keep)
	})
	if !ok {
		return nil, false
	}
	return append(out, '}'), true
}

// AppendSlimMember appends one member of a slim copy (see Slim) to out,
// which holds the copy's opening brace and the members before it; the
// caller closes it. quoted is the member's key as a JSON string, val its
// valid value.
func AppendSlimMember(out, quoted, val []byte, keep []string) []byte {
	if len(out) > 1 {
		out = append(out, ',')
	}
	out = append(append(out, quoted...), ':')
	switch {
	case KeyIn(quoted, keep):
		return append(out, val...)
	case val[0] == '"':
		return append(out, `""`...)
	case val[0] == '{':
		return append(out, `{}`...)
	case val[0] == '[':
		return append(out, `[]`...)
	}
	return append(out, val...)
}

// KeyIn reports whether the quoted JSON key names one of names, as
// encoding/json matches a struct field: unescaped, case-insensitively.
// A key that is not a valid JSON string matches, so that a caller keeps
// what it cannot read.
func KeyIn(quoted []byte, names []string) bool {
	k, _, ok := Text(quoted)
	if !ok {
		return true
	}
	for _, n := range names {
		if strings.EqualFold(string(k), n) {
			return true
		}
	}
	return false
}
