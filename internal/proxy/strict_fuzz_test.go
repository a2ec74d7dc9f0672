package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strconv"
	"testing"
)

// FuzzParseMessagesStrict holds the request parser to one rule: what the
// gateway prices is what a case-sensitive, strict JSON parser reads. The
// reference below decodes with exact keys and refuses duplicated keys (as
// unescaped) anywhere; whenever parseMessages accepts a body, the
// reference must accept it too and read the same model, max_tokens,
// stream, residency, speed and fallback and advisor models. A body the
// reference refuses (a duplicate key) must be refused by parseMessages.
func FuzzParseMessagesStrict(f *testing.F) {
	m := `"messages":[{"role":"user","content":"hi"}]`
	for _, s := range []string{
		`{"model":"claude-haiku-4-5","max_tokens":16,` + m + `}`,
		`{"model":"claude-haiku-4-5","max_tokens":16,"stream":true,"inference_geo":"us","speed":"fast",` + m + `}`,
		`{"model":"a","model":"b","max_tokens":16,` + m + `}`,
		`{"model":"a","MODEL":"b","max_tokens":16,` + m + `}`,
		`{"model":"a","m\u006fdel":"b","max_tokens":16,` + m + `}`,
		`{"model":"a","max_tokens":1e3,` + m + `}`,
		`{"model":"a","max_tokens":16,"Stream":true,` + m + `}`,
		`{"model":"a","max_tokens":16,` + m + `,"fallbacks":[{"model":"b","max_tokens":20},{"model":"c","Model":"d"}]}`,
		`{"model":"a","max_tokens":16,` + m + `,"tools":[{"type":"advisor_20260301","name":"advisor","model":"e","max_uses":2,"max_tokens":9}]}`,
		`{"model":"a","max_tokens":16,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"u"}}]}]}`,
		`{"model":"a","max_tokens":16,"messages":[{"role":"user","content":"x","content":"y"}]}`,
		`{"model":"a\ud800","max_tokens":16,` + m + `}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parseMessages(body)
		ref, refErr := strictDecode(body)
		if err != nil {
			return // refusing is always safe for money
		}
		if refErr != nil {
			t.Fatalf("parseMessages accepted %q; the strict parser refuses it: %v", body, refErr)
		}
		model, _ := ref["model"].(string)
		if p.Model != model {
			t.Fatalf("%q: priced model %q, strict parser reads %q", body, p.Model, model)
		}
		num, ok := ref["max_tokens"].(json.Number)
		if !ok || !plainDigits.MatchString(string(num)) || num.String() != itoa(p.MaxTokens) {
			t.Fatalf("%q: priced max_tokens %d, strict parser reads %v", body, p.MaxTokens, ref["max_tokens"])
		}
		stream, _ := ref["stream"].(bool)
		geo, geoSet := ref["inference_geo"].(string)
		speed, _ := ref["speed"].(string)
		if p.Stream != stream || p.GeoUS != (geo == "us") || p.Bounds.GeoDefault != (!geoSet && ref["inference_geo"] == nil) || p.Fast != (speed == "fast") {
			t.Fatalf("%q: priced stream %v geo %v (default %v) fast %v; strict parser reads %v %v %v", body, p.Stream, p.GeoUS, p.Bounds.GeoDefault, p.Fast, ref["stream"], ref["inference_geo"], ref["speed"])
		}
		var want []string
		if fb, ok := ref["fallbacks"].([]any); ok {
			for _, e := range fb {
				if o, ok := e.(map[string]any); ok {
					s, _ := o["model"].(string)
					want = append(want, s)
				}
			}
		}
		if tools, ok := ref["tools"].([]any); ok {
			for _, e := range tools {
				if o, ok := e.(map[string]any); ok && o["type"] == "advisor_20260301" {
					s, _ := o["model"].(string)
					want = append(want, s)
				}
			}
		}
		if got := p.Bounds.Models(); !equalStrings(got, want) {
			t.Fatalf("%q: priced other models %q, strict parser reads %q", body, got, want)
		}
	})
}

var plainDigits = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var errDuplicate = errors.New("duplicate key")

// strictDecode is the reference: encoding/json's tokenizer (exact,
// case-sensitive keys as written, unescaped), numbers kept as written, a
// duplicated key in any object an error, one top-level object and nothing
// after it.
func strictDecode(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	v, err := strictValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not an object")
	}
	return obj, nil
}

func strictValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := map[string]any{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key := k.(string)
			if _, dup := obj[key]; dup {
				return nil, errDuplicate
			}
			v, err := strictValue(dec)
			if err != nil {
				return nil, err
			}
			obj[key] = v
		}
		_, err := dec.Token()
		return obj, err
	case json.Delim('['):
		var arr []any
		for dec.More() {
			v, err := strictValue(dec)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token()
		return arr, err
	}
	return tok, nil
}
