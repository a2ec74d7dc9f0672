package proxy

import (
	"errors"
	"fmt"
	"strconv"

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
	ok := v.Members(obj, func(key, val []byte) {
		k, esc, _ := jsonscan.Text(key) // Members validated it
		out = append(out, member{key: string(k), escaped: esc, val: val})
	})
	return out, ok
}

// arrayElements calls fn with each element of a valid JSON array and
// reports whether arr was one (jsonscan.Elements).
func arrayElements(arr []byte, fn func(val []byte)) bool { return jsonscan.Elements(arr, fn) }

// checkKeys refuses, in an object the gateway prices from, a key that is
// one of fields written with escapes, or that differs from one only in
// case. where names the object for the message.
func checkKeys(ms []member, where string, fields ...string) error {
	for _, m := range ms {
		for _, f := range fields {
			switch jsonscan.FormOf(m.key, m.escaped, f) {
			case jsonscan.KeyEscaped:
				return errBadRequest(fmt.Sprintf("%s%s: the key must be written without escapes", where, f), nil)
			case jsonscan.KeyCaseVariant:
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
// plain digits (jsonscan.PlainCount). The API's parser may accept other
// spellings (1e3, 1000.0, "1000") and read them differently from ours, so
// they are refused.
func plainCount(raw []byte, name string) (int64, error) {
	n, ok := jsonscan.PlainCount(raw)
	if !ok {
		return 0, errBadRequest(fmt.Sprintf("%s: must be a non-negative integer written in plain digits (no sign, fraction, exponent or quotes)", name), nil)
	}
	return n, nil
}

// plainString reads a string the gateway prices from. Invalid UTF-8 is
// refused: encoding/json would read it as U+FFFD and another parser might
// refuse it or read it otherwise.
func plainString(raw []byte, name string) (string, error) {
	s, isString, utf8OK := jsonscan.PlainString(raw)
	switch {
	case !isString:
		return "", errBadRequest(name+": must be a string", nil)
	case !utf8OK:
		return "", errBadRequest(name+": must be valid UTF-8", nil)
	}
	return s, nil
}

// contentWalk follows a body through jsonscan.Walk, which refuses
// duplicated keys in every object after unescaping ("a" and "\u0061" are
// the same key). Inside messages and system it notes the content the body
// only points at (see contentScan), and it keeps the top-level members,
// so the body is walked once for all three.
type contentWalk struct {
	scan   contentScan
	top    []member // the members of the top-level object
	topKey []byte   // the key of the top-level member being walked
	topEsc bool
	frames []frame // the containers open, the top-level one first
	child  objInfo // what the object just closed kept, for its parent
	// Room for the frames of a Messages body (body, messages, a message,
	// its content, a block, a tool result's content, a block, a source)
	// and for its top-level members in the one allocation of the walk.
	stack  [8]frame
	topBuf [16]member
}

func newContentWalk() *contentWalk {
	w := new(contentWalk)
	w.frames, w.top = w.stack[:0], w.topBuf[:0]
	return w
}

// frame is one open container.
type frame struct {
	obj     bool
	at      place
	content bool    // inside messages or system
	kind    keyKind // the key of the member being walked
	n       int     // members so far
	info    objInfo
}

// keyKind is a key as far as the content walk reads it: the frames keep
// this byte, not the key, so that they hold few pointers.
type keyKind uint8

const (
	keyOther keyKind = iota
	keyMessages
	keySystem
	keyContent
	keyType
	keyMediaType
	keySource
	keyFileID
)

func kindOf(key []byte) keyKind {
	switch string(key) {
	case "messages":
		return keyMessages
	case "system":
		return keySystem
	case "content":
		return keyContent
	case "type":
		return keyType
	case "media_type":
		return keyMediaType
	case "source":
		return keySource
	case "file_id":
		return keyFileID
	}
	return keyOther
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

func (w *contentWalk) Open(obj bool) {
	f := frame{obj: obj}
	if n := len(w.frames); n > 0 {
		p := &w.frames[n-1]
		if p.obj {
			// The conversation is everything under messages and system.
			top, k := n == 1, p.kind
			f.content = p.content || (top && (k == keyMessages || k == keySystem))
			switch {
			case top && k == keyMessages:
				f.at = placeMessages
			case top && k == keySystem, p.at == placeMessage && k == keyContent:
				f.at = placeContent
			}
		} else {
			f.content = p.content
			switch p.at {
			case placeMessages:
				f.at = placeMessage
			case placeContent:
				f.at = placeBlock
			}
		}
	}
	w.frames = append(w.frames, f)
}

func (w *contentWalk) Key(key []byte, escaped bool) {
	f := &w.frames[len(w.frames)-1]
	f.kind = kindOf(key)
	f.n++
	if len(w.frames) == 1 {
		w.topKey, w.topEsc = key, escaped
	}
}

func (w *contentWalk) Value(raw []byte) {
	f := &w.frames[len(w.frames)-1]
	child := w.child
	w.child = objInfo{}
	if !f.obj {
		return
	}
	if f.content {
		// objInfo.member reads these keys only.
		switch f.kind {
		case keyType:
			f.info.member([]byte("type"), raw, child)
		case keyMediaType:
			f.info.member([]byte("media_type"), raw, child)
		case keySource:
			f.info.member([]byte("source"), raw, child)
		case keyFileID:
			f.info.member([]byte("file_id"), raw, child)
		}
	}
	if len(w.frames) == 1 {
		w.top = append(w.top, member{key: topKeyString(w.topKey), escaped: w.topEsc, val: raw})
	}
}

func (w *contentWalk) Close(obj bool) {
	f := &w.frames[len(w.frames)-1]
	w.frames = w.frames[:len(w.frames)-1]
	w.child = objInfo{}
	// An empty object is classified as nothing, not as a block of no type.
	if !obj || f.n == 0 {
		return
	}
	if f.content {
		w.scan.object(f.info)
	}
	if f.at == placeBlock {
		w.scan.block(f.info.typ)
	}
	w.child = f.info
}

func duplicateKey(k string) error {
	if len(k) > 64 {
		k = k[:64] + "…"
	}
	return errBadRequest(fmt.Sprintf("duplicate key %s: every key may appear once per object (parsers disagree on which one wins)", strconv.Quote(k)), nil)
}

// checkDuplicates refuses a body with a duplicated key in any object, or
// that is not valid JSON, and returns what its conversation points at and
// its top-level members.
func checkDuplicates(body []byte) (bodyScan, error) {
	if jsonscan.SkipSpace(body, 0) >= len(body) {
		return bodyScan{}, errBadRequest("request body is empty", nil)
	}
	w := newContentWalk()
	if err := jsonscan.Walk(body, w); err != nil {
		var dup *jsonscan.DuplicateKeyError
		if errors.As(err, &dup) {
			return bodyScan{}, duplicateKey(dup.Key)
		}
		return bodyScan{}, errBadRequest("request body is not valid JSON", nil)
	}
	return bodyScan{content: w.scan, top: w.top}, nil
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
// params written exactly. A body that is not valid JSON is refused too.
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

// topKeyString is string(key) without an allocation for the keys a
// Messages body usually has.
func topKeyString(key []byte) string {
	switch string(key) { // compared in place: no allocation
	case "model":
		return "model"
	case "max_tokens":
		return "max_tokens"
	case "messages":
		return "messages"
	case "stream":
		return "stream"
	case "system":
		return "system"
	case "tools":
		return "tools"
	case "tool_choice":
		return "tool_choice"
	case "temperature":
		return "temperature"
	case "metadata":
		return "metadata"
	case "thinking":
		return "thinking"
	}
	return string(key)
}
