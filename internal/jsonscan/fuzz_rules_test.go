package jsonscan

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// The checks of FuzzScan on strings and on the strictness rules.

// checkText: Text reads a string as encoding/json does, and refuses
// anything else.
func checkText(t *testing.T, b []byte) {
	t.Helper()
	got, esc, ok := Text(b)
	var want string
	wantOK := len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && json.Unmarshal(b, &want) == nil
	if ok != wantOK || ok && (string(got) != want || esc != (bytes.IndexByte(b, '\\') >= 0)) {
		t.Fatalf("%q: Text = %q, %v, %v; encoding/json reads %q, %v", b, got, esc, ok, want, wantOK)
	}
}

// checkStringModes: the lenient reading of a string, whole or resumed
// after any piece, ends it where the strict one does whenever the strict
// one accepts it.
func checkStringModes(t *testing.T, b []byte, split uint) {
	t.Helper()
	i := 0
	if len(b) > 0 && b[0] == '"' {
		i = 1
	}
	end, st := scanString(b, i, false)
	if se, sst := scanString(b, i, true); sst == strClosed && (st != strClosed || end != se) {
		t.Fatalf("%q: the strict scan ends the string at %d, the lenient one at %d (%d)", b, se, end, st)
	}
	k := i + int(split%uint(len(b)-i+1))
	pe, pst := scanString(b[:k], i, false)
	if pst != strClosed {
		next := k
		if pst == strOpenEsc {
			next++
		}
		if next > len(b) {
			return // the piece ended in an escape that b ends in too
		}
		pe, pst = scanString(b, next, false)
	}
	if pe != end || pst != st {
		t.Fatalf("%q: the lenient scan resumed after %d ends at %d (%d), whole at %d (%d)", b, k, pe, pst, end, st)
	}
}

// slimKeep are the members a slim view keeps whole in the harness.
var slimKeep = []string{"model", "max_tokens", "tools"}

// checkSlim: Slim succeeds on a valid object, and its view has the same
// members with the same keys as written, each kept value whole when
// encoding/json takes its key for a kept field, and each other value empty
// of its own type.
func checkSlim(t *testing.T, b []byte, ref *refDoc) {
	t.Helper()
	var v Validator
	slim, ok := Slim(&v, b, slimKeep...)
	if want := ref != nil && ref.topObj; ok != want {
		t.Fatalf("%q: Slim %v, a valid object %v", b, ok, want)
	}
	if !ok {
		return
	}
	sref, valid := reference(slim)
	if !valid || !sref.topObj || len(sref.top) != len(ref.top) {
		t.Fatalf("%q: slim view %q is not an object with the same members", b, slim)
	}
	for i, m := range ref.top {
		s := sref.top[i]
		kept := slices.ContainsFunc(slimKeep, func(f string) bool { return jsonTakesFor(m.rawKey, f) })
		if kept != KeyIn(m.rawKey, slimKeep) {
			t.Fatalf("%q: KeyIn(%s) = %v; encoding/json takes it for one of %q: %v", b, m.rawKey, !kept, slimKeep, kept)
		}
		want := m.val
		switch {
		case kept:
		case m.val[0] == '"':
			want = []byte(`""`)
		case m.val[0] == '{':
			want = []byte(`{}`)
		case m.val[0] == '[':
			want = []byte(`[]`)
		}
		if !bytes.Equal(s.rawKey, m.rawKey) || !bytes.Equal(s.val, want) {
			t.Fatalf("%q: slim member %d is %s:%s, want %s:%s", b, i, s.rawKey, s.val, m.rawKey, want)
		}
	}
}

var (
	// pricedFields are keys the gateway prices from.
	pricedFields = []string{"model", "max_tokens", "stream", "type", "max_uses", "custom_id", "params", "requests", "speed", "inference_geo"}
	plainDigits  = regexp.MustCompile(`^(0|[1-9][0-9]{0,17})$`)
)

// checkStrictRules holds FormOf, PlainCount and PlainString to their rules
// on the input itself and on every top-level member.
func checkStrictRules(t *testing.T, b []byte, ref *refDoc) {
	t.Helper()
	vals := [][]byte{b}
	if ref != nil {
		for _, m := range ref.top {
			vals = append(vals, m.val)
			k, esc, ok := Text(m.rawKey)
			if !ok || string(k) != m.key {
				t.Fatalf("%q: Text(%s) = %q, %v; encoding/json reads %q", b, m.rawKey, k, ok, m.key)
			}
			for _, f := range pricedFields {
				if got, want := FormOf(string(k), esc, f), refForm(m, f); got != want {
					t.Fatalf("%q: key %s as field %q: FormOf %d, reference %d", b, m.rawKey, f, got, want)
				}
			}
		}
	}
	for _, raw := range vals {
		n, ok := PlainCount(raw)
		var want int64
		wantOK := plainDigits.Match(raw) && json.Unmarshal(raw, &want) == nil
		if ok != wantOK || ok && n != want {
			t.Fatalf("%q: PlainCount(%q) = %d, %v; plain digits read as %d, %v", b, raw, n, ok, want, wantOK)
		}
		s, isString, utf8OK := PlainString(raw)
		var ws string
		wantString := len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &ws) == nil
		// One meaning to every parser: the bytes are UTF-8 and no escape
		// reads as U+FFFD (a lone surrogate, or U+FFFD itself).
		wantUTF8 := wantString && utf8.Valid(raw) && !strings.ContainsRune(ws, utf8.RuneError)
		if isString != wantString || utf8OK != wantUTF8 || utf8OK && s != ws {
			t.Fatalf("%q: PlainString(%q) = %q, %v, %v; encoding/json reads %q, %v, %v", b, raw, s, isString, utf8OK, ws, wantString, wantUTF8)
		}
	}
}
