package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/clade-gateway/clade-gateway/internal/jsonscan"
)

// The API reads a request body with a case-sensitive JSON parser, and the
// gateway must price the body the API will read. encoding/json matches keys
// case-insensitively and lets the last of duplicated keys win; another
// parser may keep the first, or match a key written with escapes
// differently. So before anything is priced the body is held to one
// meaning: no object anywhere has the same key twice (after unescaping),
// and in the objects the gateway prices from, no key differs only in case
// or escape form from a field it reads, and every count is a plain
// integer. What is left means the same to every JSON parser, and
// decodeMessages reads what the API reads.

// member is one member of an object: its key unescaped and its raw value.
type member struct {
	key     string
	escaped bool // the key was written with escapes
	val     []byte
}

// objectMembers returns the members of a valid JSON object, or false if
// obj is not one.
func objectMembers(obj []byte) ([]member, bool) {
	var v jsonscan.Validator
	var out []member
	var bad bool
	ok := v.Members(obj, func(key, val []byte) {
		k, esc, kok := unescapeKey(key)
		bad = bad || !kok
		out = append(out, member{key: k, escaped: esc, val: val})
	})
	return out, ok && !bad
}

// arrayElements calls fn with each element of a valid JSON array and
// reports whether arr was one.
func arrayElements(arr []byte, fn func(val []byte)) bool {
	var v jsonscan.Validator
	i := jsonscan.SkipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return false
	}
	i = jsonscan.SkipSpace(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return true
	}
	for i < len(arr) {
		end, ok := v.ValueEnd(arr, i, 1)
		if !ok {
			return false
		}
		fn(arr[i:end])
		i = jsonscan.SkipSpace(arr, end)
		if i < len(arr) && arr[i] == ',' {
			i = jsonscan.SkipSpace(arr, i+1)
			continue
		}
		return i < len(arr) && arr[i] == ']'
	}
	return false
}

// unescapeKey decodes a quoted key; esc reports whether it had escapes.
func unescapeKey(quoted []byte) (key string, esc bool, ok bool) {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), false, true
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return "", true, false
	}
	return s, true, true
}

// checkKeys refuses, in an object the gateway prices from, a key that is
// one of fields written with escapes, or that differs from one only in
// case. where names the object for the message.
func checkKeys(ms []member, where string, fields ...string) error {
	for _, m := range ms {
		for _, f := range fields {
			switch {
			case m.key == f && m.escaped:
				return errBadRequest(fmt.Sprintf("%s%s: the key must be written without escapes", where, f), nil)
			case m.key != f && strings.EqualFold(m.key, f):
				return errBadRequest(fmt.Sprintf("%s%q: unknown field (keys are case-sensitive; did you mean %q?)", where, m.key, f), nil)
			}
		}
	}
	return nil
}

// find returns the value of the member key, or nil.
func find(ms []member, key string) []byte {
	for _, m := range ms {
		if m.key == key {
			return m.val
		}
	}
	return nil
}

// isNull reports whether a raw value is absent or null.
func isNull(raw []byte) bool { return raw == nil || string(raw) == "null" }

// plainCount reads a count the gateway prices from: a JSON integer in
// plain digits, without sign, fraction or exponent, that fits int64. The
// API's parser may accept other spellings (1e3, 1000.0, "1000") and read
// them differently from ours, so they are refused.
func plainCount(raw []byte, name string) (int64, error) {
	bad := len(raw) == 0 || len(raw) > 18 || (raw[0] == '0' && len(raw) > 1)
	for _, c := range raw {
		bad = bad || c < '0' || c > '9'
	}
	if bad {
		return 0, errBadRequest(fmt.Sprintf("%s: must be a non-negative integer written in plain digits (no sign, fraction, exponent or quotes)", name), nil)
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, errBadRequest(name+": integer out of range", err)
	}
	return n, nil
}

// plainString reads a string the gateway prices from. Invalid UTF-8 is
// refused: encoding/json would read it as U+FFFD and another parser might
// refuse it or read it otherwise.
func plainString(raw []byte, name string) (string, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", errBadRequest(name+": must be a string", nil)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errBadRequest(name+": must be a string", err)
	}
	if !utf8.Valid(raw) || strings.ContainsRune(s, utf8.RuneError) {
		return "", errBadRequest(name+": must be valid UTF-8", nil)
	}
	return s, nil
}

// dupWalker refuses duplicated keys in every object of a valid JSON value
// after unescaping ("a" and "\u0061" are the same key). It recurses into
// containers only, so its depth is the document's, which jsonscan bounds.
// Inside messages and system it also notes the content the body only
// points at (see contentScan), so the body is walked once for both.
type dupWalker struct {
	v    jsonscan.Validator
	scan contentScan
	top  []member // the members of the top-level object
}

// Where a value sits in a Messages body, for the block-type check.
type place uint8

const (
	placeOther    place = iota
	placeMessages       // the messages array
	placeMessage        // one message
	placeContent        // a message's content array, or the system array
	placeBlock          // one content block
)

func (w *dupWalker) value(b []byte, i, depth int, content bool, at place) (int, objInfo, error) {
	switch b[i] {
	case '{':
		return w.object(b, i, depth, content, at)
	case '[':
		elem := placeOther
		switch at {
		case placeMessages:
			elem = placeMessage
		case placeContent:
			elem = placeBlock
		}
		i = jsonscan.SkipSpace(b, i+1)
		if b[i] == ']' {
			return i + 1, objInfo{}, nil
		}
		for {
			end, _, err := w.value(b, i, depth+1, content, elem)
			if err != nil {
				return 0, objInfo{}, err
			}
			i = jsonscan.SkipSpace(b, end)
			if b[i] == ']' {
				return i + 1, objInfo{}, nil
			}
			i = jsonscan.SkipSpace(b, i+1) // ','
		}
	}
	end, ok := w.v.ValueEnd(b, i, depth)
	if !ok {
		return 0, objInfo{}, errBadRequest("request body is not valid JSON", nil)
	}
	return end, objInfo{}, nil
}

func (w *dupWalker) object(b []byte, i, depth int, content bool, at place) (int, objInfo, error) {
	var small [16][]byte
	keys := small[:0]
	var many map[string]struct{}
	var info objInfo
	i = jsonscan.SkipSpace(b, i+1)
	if b[i] == '}' {
		return i + 1, info, nil
	}
	for {
		kEnd, vStart, ok := w.v.MemberKey(b, i)
		if !ok {
			return 0, info, errBadRequest("request body is not valid JSON", nil)
		}
		k := b[i+1 : kEnd-1]
		if bytes.IndexByte(k, '\\') >= 0 {
			s, _, ok := unescapeKey(b[i:kEnd])
			if !ok {
				return 0, info, errBadRequest("request body is not valid JSON", nil)
			}
			k = []byte(s)
		}
		switch {
		case many != nil:
			if _, dup := many[string(k)]; dup {
				return 0, info, duplicateKey(k)
			}
			many[string(k)] = struct{}{}
		case len(keys) < len(small):
			for _, o := range keys {
				if bytes.Equal(o, k) {
					return 0, info, duplicateKey(k)
				}
			}
			keys = append(keys, k)
		default:
			many = make(map[string]struct{}, 2*len(small))
			for _, o := range keys {
				many[string(o)] = struct{}{}
			}
			if _, dup := many[string(k)]; dup {
				return 0, info, duplicateKey(k)
			}
			many[string(k)] = struct{}{}
		}
		// The conversation is everything under messages and system.
		childContent := content || (depth == 0 && (string(k) == "messages" || string(k) == "system"))
		childAt := placeOther
		switch {
		case depth == 0 && string(k) == "messages":
			childAt = placeMessages
		case depth == 0 && string(k) == "system", at == placeMessage && string(k) == "content":
			childAt = placeContent
		}
		end, child, err := w.value(b, vStart, depth+1, childContent, childAt)
		if err != nil {
			return 0, info, err
		}
		if content {
			info.member(k, b[vStart:end], child)
		}
		if depth == 0 {
			w.top = append(w.top, member{key: string(k), escaped: bytes.IndexByte(b[i+1:kEnd-1], '\\') >= 0, val: b[vStart:end]})
		}
		i = jsonscan.SkipSpace(b, end)
		if b[i] == '}' {
			if content {
				w.scan.object(info)
			}
			if at == placeBlock {
				w.scan.block(info.typ)
			}
			return i + 1, info, nil
		}
		i = jsonscan.SkipSpace(b, i+1) // ','
	}
}

func duplicateKey(k []byte) error {
	q := string(k)
	if len(q) > 64 {
		q = q[:64] + "…"
	}
	return errBadRequest(fmt.Sprintf("duplicate key %s: every key may appear once per object (parsers disagree on which one wins)", strconv.Quote(q)), nil)
}

// checkDuplicates refuses a body with a duplicated key in any object and
// returns what its conversation points at and its top-level members. The
// body must already be valid JSON.
func checkDuplicates(body []byte) (bodyScan, error) {
	var w dupWalker
	i := jsonscan.SkipSpace(body, 0)
	if i >= len(body) {
		return bodyScan{}, errBadRequest("request body is empty", nil)
	}
	_, _, err := w.value(body, i, 0, false, placeOther)
	return bodyScan{content: w.scan, top: w.top}, err
}

// bodyScan is what the one walk of a body found: what its conversation
// points at, and its top-level members.
type bodyScan struct {
	content contentScan
	top     []member
}

// checkBatchBody holds a batch creation body to one meaning, as
// parseMessages does each request's params: no duplicated key anywhere
// ({"requests":[cheap],"requests":[dear]} would be priced by one parser
// and run by another), and requests and each request's custom_id and
// params written exactly. body must be valid JSON.
func checkBatchBody(body []byte) error {
	bs, err := checkDuplicates(body)
	if err != nil {
		return err
	}
	if err := checkKeys(bs.top, "", "requests"); err != nil {
		return err
	}
	i := 0
	arrayElements(find(bs.top, "requests"), func(rq []byte) {
		if ms, ok := objectMembers(rq); ok && err == nil {
			err = checkKeys(ms, fmt.Sprintf("requests[%d].", i), "custom_id", "params")
		}
		i++
	})
	return err
}
