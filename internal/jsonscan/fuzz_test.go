package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// FuzzScan holds every entry point of the package to the reference parser
// (reference_test.go) on the same input: Valid and ValueEnd, Members,
// Fields and Elements, the watched strings, Walk with its duplicate-key
// rule, TopLevel fed whole and in pieces, Text, Slim and KeyIn, FormOf,
// PlainCount and PlainString. This is the parsing the gateway prices
// from: what it reads must be what encoding/json, and a strict parser,
// read.
func FuzzScan(f *testing.F) {
	for i, c := range append(append(validCases, scanSeeds...), fixtureSeeds(f)...) {
		f.Add([]byte(c), uint(i))
	}
	f.Fuzz(func(t *testing.T, b []byte, split uint) {
		ref, valid := reference(b)
		if got := Valid(b); got != valid {
			t.Fatalf("%q: Valid %v, encoding/json %v", b, got, valid)
		}
		checkValueEnd(t, b, valid)
		checkMembers(t, b)
		checkFields(t, b, ref)
		checkElements(t, b, ref)
		checkWatch(t, b, ref)
		checkWalk(t, b, ref)
		checkTopLevel(t, b, split, ref)
		checkText(t, b)
		checkStringModes(t, b, split)
		checkSlim(t, b, ref)
		checkStrictRules(t, b, ref)
	})
}

// scanSeeds are documents shaped like the ones the gateway reads, with the
// spellings the strictness rules are about.
var scanSeeds = []string{
	`{"model":"claude-sonnet-4-6","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"a \"q\" \\","cache_control":{"type":"ephemeral","ttl":"1h"}}]}]}`,
	`{"model":"a","model":"b","max_tokens":16}`,
	`{"model":"a","MODEL":"b","Max_Tokens":1,"ſtream":true,"max_to\u212Aens":7}`,
	`{"model":"a","m\u006fdel":"b","max\u005ftokens":1}`,
	`{"a\u00ff":1,"aÿ":2}`,
	"{\"a\xff\":1,\"a\xfe\":2}",
	`{"max_tokens":1e3,"x":100.0,"y":"100","z":-1,"w":0,"v":-0,"u":123456789012345678,"s":1234567890123456789}`,
	`{"model":"a\ud800","speed":"fast\ufffd","inference_geo":"us"}`,
	`{"requests":[{"custom_id":"a","params":{"model":"m","max_tokens":1}},{"custom_id":"a","Params":{}}]}`,
	`{"k1":1,"k2":1,"k3":1,"k4":1,"k5":1,"k6":1,"k7":1,"k8":1,"k9":1,"k10":1,"k11":1,"k12":1,"k13":1,"k14":1,"k15":1,"k16":1,"k17":1,"k3":2}`,
	`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}`,
	`{"us\u0061ge":{"output_tokens":1},"model":"a\"b","id":"msg_1"}`,
	`{"a":"\\\\\"","usage":{"input_tokens":2},"usage":null}`,
	`{"id":"msg","content":[{"type":"text","text":"` + strings.Repeat(`lorem \"ipsum\" \n`, 8) + `"}],"usage":{"input_tokens":12}}`,
	`{"model":"claude-\u0073onnet-4-6","max_tokens":1024,"messages":[{"role":"user","content":"file_id container_upload"}],"x":"file_id"}`,
	`{"":"","\u0000":0,"\ud83d\ude00":[]}`,
	`[{"a":1},[2,{"a":1,"a":2}],"s",null]`,
}

// fixtureSeeds are the meter's recorded response bodies.
func fixtureSeeds(f *testing.F) []string {
	files, err := filepath.Glob(filepath.Join("..", "meter", "testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	var out []string
	for _, file := range files {
		if strings.HasSuffix(file, ".golden.json") {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// checkValueEnd: ValueEnd finds the end of a valid document, and whatever
// it takes for a value at the start of any input is one to encoding/json.
func checkValueEnd(t *testing.T, b []byte, valid bool) {
	t.Helper()
	var v Validator
	start := SkipSpace(b, 0)
	end, ok := v.ValueEnd(b, start, 0)
	if valid && (!ok || SkipSpace(b, end) != len(b)) {
		t.Fatalf("%q: ValueEnd = %d, %v on a valid document", b, end, ok)
	}
	if ok && !json.Valid(b[start:end]) {
		t.Fatalf("%q: ValueEnd took %q for a value; encoding/json refuses it", b, b[start:end])
	}
}

func checkFields(t *testing.T, b []byte, ref *refDoc) {
	t.Helper()
	var got []refMember
	ok := Fields(b, func(key, val []byte) { got = append(got, refMember{key: string(key), val: val}) })
	if want := ref != nil && ref.topObj; ok != want {
		t.Fatalf("%q: Fields %v, a valid object %v", b, ok, want)
	}
	if !ok {
		return
	}
	if len(got) != len(ref.top) {
		t.Fatalf("%q: Fields found %d members, encoding/json %d", b, len(got), len(ref.top))
	}
	for i, m := range got {
		if m.key != ref.top[i].key || !bytes.Equal(m.val, ref.top[i].val) {
			t.Fatalf("%q: member %d is %q: %s, encoding/json %q: %s", b, i, m.key, m.val, ref.top[i].key, ref.top[i].val)
		}
	}
}

func checkElements(t *testing.T, b []byte, ref *refDoc) {
	t.Helper()
	var got [][]byte
	ok := Elements(b, func(val []byte) { got = append(got, val) })
	if want := ref != nil && ref.topArr; ok != want {
		t.Fatalf("%q: Elements %v, a valid array %v", b, ok, want)
	}
	if ok && !slices.EqualFunc(got, ref.elems, bytes.Equal) {
		t.Fatalf("%q: Elements %q, encoding/json %q", b, got, ref.elems)
	}
}

// checkWatch: a Validator watching names sees exactly the names that are
// a string of the document, key or value, as encoding/json reads it.
func checkWatch(t *testing.T, b []byte, ref *refDoc) {
	t.Helper()
	if ref == nil {
		return
	}
	names := []string{"file_id", "cache_control", "1h"}
	if n := len(ref.strs); n > 0 {
		for _, s := range []string{ref.strs[0], ref.strs[n-1] + "x", ref.strs[n/2]} {
			if !slices.Contains(names, s) { // watched names the first of equal names
				names = append(names, s)
			}
		}
	}
	var want uint64
	for i, n := range names {
		if slices.Contains(ref.strs, n) {
			want |= 1 << i
		}
	}
	v := Validator{Watch: names, Each: true}
	if !Valid(b) {
		return
	}
	v.ValueEnd(b, SkipSpace(b, 0), 0)
	if v.Hits != want || v.Seen != (want != 0) {
		t.Fatalf("%q: watching %q saw %b (seen %v), encoding/json reads %b", b, names, v.Hits, v.Seen, want)
	}
	if hits, err := WalkWatched(b, &recorder{}, names); err == nil && hits != want {
		t.Fatalf("%q: walking and watching %q saw %b, encoding/json reads %b", b, names, hits, want)
	}
	first := Validator{Watch: names}
	first.ValueEnd(b, SkipSpace(b, 0), 0)
	if first.Seen != (want != 0) || first.Hits&^want != 0 || (want != 0 && first.Hits&(first.Hits-1) != 0) {
		t.Fatalf("%q: watching %q for the first: seen %v hits %b; encoding/json reads %b", b, names, first.Seen, first.Hits, want)
	}
}

// recorder is a Visitor that writes down what Walk tells it.
type recorder struct{ events []refEvent }

func (r *recorder) Open(obj bool) {
	r.events = append(r.events, refEvent{kind: map[bool]byte{true: '{', false: '['}[obj]})
}
func (r *recorder) Key(key []byte, esc bool) {
	r.events = append(r.events, refEvent{kind: 'k', text: string(key), esc: esc})
}
func (r *recorder) Value(raw []byte) {
	r.events = append(r.events, refEvent{kind: 'v', text: string(raw)})
}
func (r *recorder) Close(obj bool) {
	r.events = append(r.events, refEvent{kind: map[bool]byte{true: '}', false: ']'}[obj]})
}

// checkWalk: Walk refuses what encoding/json refuses, and a key twice in
// one object (as read), naming the first; on the rest it reports the
// structure the decoder reads.
func checkWalk(t *testing.T, b []byte, ref *refDoc) {
	t.Helper()
	var r recorder
	err := Walk(b, &r)
	var dup *DuplicateKeyError
	switch {
	case ref == nil:
		// The first fault in document order: a duplicate key may come
		// before the bytes that make the document invalid.
		if !errors.Is(err, ErrInvalid) && !errors.As(err, &dup) {
			t.Fatalf("%q: Walk = %v on invalid JSON", b, err)
		}
	case ref.hasDup:
		if !errors.As(err, &dup) || dup.Key != ref.dup {
			t.Fatalf("%q: Walk = %v; the first duplicate key is %q", b, err, ref.dup)
		}
	case err != nil:
		t.Fatalf("%q: Walk = %v on a valid document without duplicate keys", b, err)
	case !reflect.DeepEqual(r.events, ref.events):
		t.Fatalf("%q: Walk reported\n%v\nencoding/json reads\n%v", b, r.events, ref.events)
	}
}

type capture struct {
	slot     int
	raw      string
	overflow bool
}

// feedTopLevel feeds the pieces to a TopLevel and lists its captures.
func feedTopLevel(keys [MaxTopKeys]string, limits [MaxTopKeys]int, pieces ...[]byte) (caps []capture, complete, done bool) {
	s := NewTopLevel(keys, limits)
	for _, p := range pieces {
		for len(p) > 0 {
			n, got := s.Feed(p)
			p = p[n:]
			if got {
				slot, raw, overflow := s.Captured()
				caps = append(caps, capture{slot, string(raw), overflow})
			}
		}
	}
	return caps, s.Complete(), s.Done()
}

// checkTopLevel: TopLevel, fed in any pieces, captures what it captures
// fed whole; on a valid document that is every top-level member with one
// of its keys (as read, written in at most maxRawKey bytes), each value as
// written or overflowing its limit.
func checkTopLevel(t *testing.T, b []byte, split uint, ref *refDoc) {
	t.Helper()
	keys := [MaxTopKeys]string{"usage", "type"}
	if ref != nil && len(ref.top) > 0 {
		keys[2] = ref.top[len(ref.top)/2].key // "" leaves the slot unused
	}
	limits := [MaxTopKeys]int{1 << 20, 16, 8}
	caps, complete, done := feedTopLevel(keys, limits, b)
	for _, c := range caps {
		if !c.overflow && len(c.raw) > limits[c.slot] {
			t.Fatalf("%q: captured %d bytes for %q, over its limit %d", b, len(c.raw), keys[c.slot], limits[c.slot])
		}
	}
	i := int(split % uint(len(b)+1))
	j := i + int(split/7%uint(len(b)-i+1))
	for _, pieces := range [][][]byte{{b[:i], b[i:]}, {b[:i], b[i:j], b[j:]}} {
		pc, pcomplete, pdone := feedTopLevel(keys, limits, pieces...)
		if !reflect.DeepEqual(pc, caps) || pcomplete != complete || pdone != done {
			t.Fatalf("%q: in pieces at %d,%d TopLevel captured %v (complete %v, done %v), whole %v (%v, %v)", b, i, j, pc, pcomplete, pdone, caps, complete, done)
		}
	}
	if ref == nil {
		return
	}
	var want []capture
	for _, m := range ref.top {
		if len(m.rawKey)-2 > maxRawKey {
			continue
		}
		for slot, k := range keys {
			if k != "" && k == m.key {
				if len(m.val) > limits[slot] {
					want = append(want, capture{slot, "", true})
				} else {
					want = append(want, capture{slot, string(m.val), false})
				}
				break
			}
		}
	}
	if !reflect.DeepEqual(caps, want) || complete != ref.topObj || !done && ref.topObj {
		t.Fatalf("%q: TopLevel captured %v (complete %v, done %v), encoding/json reads %v (an object %v)", b, caps, complete, done, want, ref.topObj)
	}
}

func TestScanSeedsAreWhatTheyClaim(t *testing.T) {
	// The seeds the strictness rules are about must reach the rules: each
	// is valid JSON, so the fuzz run starts from documents the reference
	// reads.
	for _, s := range scanSeeds {
		if !json.Valid([]byte(s)) {
			t.Errorf("seed is not valid JSON: %.60q", s)
		}
	}
}
