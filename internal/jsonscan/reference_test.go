package jsonscan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
)

// The reference parser the fuzz harness holds every entry point to:
// encoding/json's own decoder, token by token, with each value's bytes
// cut out of the input by the decoder's offsets, so nothing of this
// package is used to read the document. On top of it, the strictness
// rules as rules: a key twice in one object (as read), a key that reads as
// a field but is not written as it, a key encoding/json would take for a
// field, a count in plain digits.

// refEvent is one step of a document's structure, as Walk reports it.
type refEvent struct {
	kind byte   // '{' '[' open, '}' ']' close, 'k' key, 'v' value
	text string // a key as read, or a value as written
	esc  bool   // a key written with escapes
}

// refMember is one member of an object, key as read and as written.
type refMember struct {
	key    string
	rawKey []byte // quoted, as written
	val    []byte
}

// refDoc is what the reference read from a valid document.
type refDoc struct {
	events  []refEvent
	strs    []string    // every string, keys and values, as read
	top     []refMember // the members of a top-level object
	topObj  bool
	topArr  bool
	elems   [][]byte // the elements of a top-level array
	dup     string   // the first key found twice in one object, in document order
	hasDup  bool
	b       []byte
	dec     *json.Decoder
	atDepth int
}

// reference reads b with encoding/json; ok is false when json.Valid
// refuses it.
func reference(b []byte) (d *refDoc, ok bool) {
	if !json.Valid(b) {
		return nil, false
	}
	d = &refDoc{b: b, dec: json.NewDecoder(bytes.NewReader(b))}
	d.dec.UseNumber()
	d.value()
	return d, true
}

// skipSep skips the whitespace and the one ',' or ':' the decoder leaves
// in front of the next token.
func skipSep(b []byte, i int) int {
	for i < len(b) && strings.IndexByte(" \t\r\n", b[i]) >= 0 {
		i++
	}
	if i < len(b) && (b[i] == ',' || b[i] == ':') {
		i++
	}
	for i < len(b) && strings.IndexByte(" \t\r\n", b[i]) >= 0 {
		i++
	}
	return i
}

// value reads the next value and returns where it starts and ends in b.
func (d *refDoc) value() (start, end int) {
	start = skipSep(d.b, int(d.dec.InputOffset()))
	tok, err := d.dec.Token()
	if err != nil {
		panic("reference: valid JSON the decoder refuses: " + err.Error())
	}
	top := d.atDepth == 0
	d.atDepth++
	switch tok {
	case json.Delim('{'):
		d.topObj = d.topObj || top
		d.events = append(d.events, refEvent{kind: '{'})
		seen := map[string]bool{}
		for d.dec.More() {
			ks := skipSep(d.b, int(d.dec.InputOffset()))
			k, _ := d.dec.Token()
			raw := d.b[ks:d.dec.InputOffset()]
			key := k.(string)
			d.strs = append(d.strs, key)
			if seen[key] && !d.hasDup {
				d.dup, d.hasDup = key, true
			}
			seen[key] = true
			d.events = append(d.events, refEvent{kind: 'k', text: key, esc: bytes.IndexByte(raw, '\\') >= 0})
			vs, ve := d.value()
			d.events = append(d.events, refEvent{kind: 'v', text: string(d.b[vs:ve])})
			if top {
				d.top = append(d.top, refMember{key: key, rawKey: raw, val: d.b[vs:ve]})
			}
		}
		_, _ = d.dec.Token()
		d.events = append(d.events, refEvent{kind: '}'})
	case json.Delim('['):
		d.topArr = d.topArr || top
		d.events = append(d.events, refEvent{kind: '['})
		for d.dec.More() {
			vs, ve := d.value()
			d.events = append(d.events, refEvent{kind: 'v', text: string(d.b[vs:ve])})
			if top {
				d.elems = append(d.elems, d.b[vs:ve])
			}
		}
		_, _ = d.dec.Token()
		d.events = append(d.events, refEvent{kind: ']'})
	default:
		if s, ok := tok.(string); ok {
			d.strs = append(d.strs, s)
		}
	}
	d.atDepth--
	return start, int(d.dec.InputOffset())
}

// jsonTakesFor reports whether encoding/json, decoding an object with the
// quoted key rawKey into a struct, sets the field tagged field: the
// decoder's own key match, case folding included.
func jsonTakesFor(rawKey []byte, field string) bool {
	typ := reflect.StructOf([]reflect.StructField{{
		Name: "F", Type: reflect.TypeFor[json.RawMessage](), Tag: reflect.StructTag(`json:"` + field + `"`),
	}})
	v := reflect.New(typ)
	doc := append(append(append([]byte{'{'}, rawKey...), `:0`...), '}')
	if json.Unmarshal(doc, v.Interface()) != nil {
		return false
	}
	return v.Elem().Field(0).Len() > 0
}

// refForm is the reference for FormOf: a key that reads as the field is
// exact only when written as it; one encoding/json takes for the field
// otherwise is a case variant.
func refForm(m refMember, field string) KeyForm {
	switch {
	case m.key == field && string(m.rawKey) == `"`+field+`"`:
		return KeyExact
	case m.key == field:
		return KeyEscaped
	case jsonTakesFor(m.rawKey, field):
		return KeyCaseVariant
	}
	return KeyOther
}
