package proxy

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/jsonscan"
)

// slimCases are Messages bodies where a shortcut decoder could go wrong:
// duplicate, escaped and case-folded keys, escaped quotes inside skipped
// values, type errors in kept members, and bodies that are not objects.
var slimCases = []string{
	`{"model":"claude-sonnet-4-6","max_tokens":1024,"messages":[{"role":"user","content":"hi"}]}`,
	`{"model":"claude-sonnet-4-6","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"a \"quoted\" \\ back\\\\"}]}],"system":"be brief"}`,
	` { "model" : "a" , "max_tokens" : 5 , "messages" : [ ] , "temperature" : 0.5 , "stop_sequences" : [ "x" ] } `,
	`{"model":"claude-sonnet-4-6","model":"claude-opus-4-1","max_tokens":1,"messages":[1]}`,
	`{"model":"claude-sonnet-4-6","MODEL":"claude-opus-4-1","max_tokens":1,"messages":[1]}`,
	`{"model":"claude-sonnet-4-6","mod\u0065l":"claude-opus-4-1","max_tokens":1,"messages":[1]}`,
	`{"model":"claude-\u0073onnet-4-6","max_to\u212Aens":7,"ſtream":true,"messages":{}}`,
	`{"model":"a","max_tokens":1,"messages":null}`,
	`{"model":"a","max_tokens":1,"messages":[],"Messages":null}`,
	`{"model":"a","max_tokens":1,"Messages":"text"}`,
	`{"model":"a","max_tokens":1,"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"},{"name":"f","input_schema":{"type":"object"}}]}`,
	`{"model":"a","max_tokens":1,"messages":[],"mcp_servers":null}`,
	`{"model":"a","max_tokens":1,"messages":[],"mcp_servers":[{"type":"url","url":"https://x"}]}`,
	`{"model":"a","max_tokens":1,"messages":[],"MCP_Servers":{}}`,
	`{"model":"a","max_tokens":1,"messages":[],"inference_geo":"us","speed":"fast"}`,
	`{"model":5,"max_tokens":1,"messages":[]}`,
	`{"model":"a","max_tokens":"1","messages":[]}`,
	`{"model":"a","max_tokens":1.5,"messages":[]}`,
	`{"model":"a","max_tokens":1,"messages":[],"stream":"yes"}`,
	`{"model":"a","max_tokens":1,"messages":[],"tools":"x"}`,
	`{"model":"a","max_tokens":1,"messages":[],"tools":[{"type":5}]}`,
	`{"model":"a","max_tokens":1,"messages":[],"tools":[{"type":"x"}],"tools":null}`,
	`{"model":{"a":[1,2,{"b":"}"}]},"max_tokens":1,"messages":[]}`,
	`{"model":["a"],"max_tokens":1,"messages":[]}`,
	`{"model":"a\xffb","max_tokens":1,"messages":[]}`,
	`{"metadata":{"user_id":"u\"}{"},"model":"a","max_tokens":-3,"messages":[[[[["deep"]]]]]}`,
	`{"system":"\\","model":"a","max_tokens":1e3,"messages":[]}`,
	`{"":"","model":"a","max_tokens":1,"messages":[]}`,
	`{"model":"a","max_tokens":1,"messages":[{"content":[{"type":"container_upload","file_id":"f"}]}]}`,
	`{"model":"a","max_tokens":1,"messages":[],"x":"file_id","file\u005fid":1}`,
	`{"model":"a","max_tokens":1,"messages":["container_uploa\u0064 \n","file_id\n"]}`,
	`{"model":"a","max_tokens":1,"messages":[],"thinking":{"type":"enabled","budget_tokens":5},"cache_control":{"type":"ephemeral","ttl":"1h"}}`,
	"{\"k\xffey\":1,\"model\":\"a\",\"max_tokens\":1,\"messages\":[]}",
	`{"\u006d\u006f\u0064\u0065\u006c":"x<&>\u2028","max_tokens":1,"messages":[],"\u0074hinking":{"type":"enabled"}}`,
	`{"model":"a","max_tokens":1,"messages":[],"tools":[{"Type":"web_search_20250305"}]}`,
	`{"model":"a","max_tokens":1,"messages":[],"tools":[{"typ\u0065":"web_fetch_20250910","name":"f"},{}]}`,
	`{"model":"a","max_tokens":1,"messages":[],"tools":[null,{"type":"x"}]}`,
	`{"model":"a","max_tokens":1,"messages":[],"tools":[],"thinking":null,"stream":null}`,
	`{"model":"a","max_tokens":1,"messages":[],"thinking":{"Budget_Tokens":5,"type":"enabled"}}`,
	`{"model":"a","max_tokens":1,"messages":[],"thinking":{"type":"enabled","budget_tokens":-1,"extra":[1]}}`,
	`{"model":"a","max_tokens":1,"messages":[],"thinking":{"type":"enabled","budget_tokens":1e3}}`,
	`{"model":"a\u00e9ï¿½","max_tokens":1234567890123456789,"messages":"x","mcp_servers":5}`,
	`{"model":"a","max_tokens":1,"messages":[],"speed":"f\u0061st","inference_geo":null}`,
	`{}`,
	`[]`,
	`null`,
	`"model"`,
	`12`,
	``,
	`{"model":"a",`,
	`{"model":"a","max_tokens":1,"messages":[]} x`,
	`{"model":"a","max_tokens":1,"messages":[],}`,
	`{'model':'a'}`,
}

// decodeFull is what decodeMessages must equal: the plain decoder.
func decodeFull(body []byte) (messageRequest, error) {
	var r messageRequest
	err := json.Unmarshal(body, &r)
	return r, err
}

func checkSlimMatches(t *testing.T, body []byte) {
	t.Helper()
	checkOnePassMatches(t, body)
	want, wantErr := decodeFull(body)
	var got messageRequest
	seen, gotErr := decodeMessages(body, &got, "file_id", "container_upload")
	var tree any
	if gotErr == nil && json.Unmarshal(body, &tree) == nil {
		if _, isObject := tree.(map[string]any); isObject {
			// One way only: a duplicate key hides a string from the walk
			// that the upstream parser may still see, and seeing too much
			// only reserves more. TestParseMessagesServerGrowth holds the
			// other way.
			if !seen && anyString(tree, "file_id", "container_upload") {
				t.Fatalf("%q: a file reference was missed", body)
			}
		}
	}
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%q: error %v, plain decoder %v", body, gotErr, wantErr)
	}
	if wantErr != nil {
		if g, w := jsonErrText(gotErr), jsonErrText(wantErr); g != w {
			t.Fatalf("%q: error text %q, plain decoder %q", body, g, w)
		}
		return
	}
	if got.Model != want.Model || got.Stream != want.Stream || got.InferenceGeo != want.InferenceGeo || got.Speed != want.Speed {
		t.Fatalf("%q: got %+v, plain decoder %+v", body, got, want)
	}
	if (got.MaxTokens == nil) != (want.MaxTokens == nil) || (got.MaxTokens != nil && *got.MaxTokens != *want.MaxTokens) {
		t.Fatalf("%q: max_tokens %v, plain decoder %v", body, got.MaxTokens, want.MaxTokens)
	}
	if len(got.Tools) != len(want.Tools) {
		t.Fatalf("%q: tools %v, plain decoder %v", body, got.Tools, want.Tools)
	}
	for i := range got.Tools {
		if got.Tools[i] != want.Tools[i] {
			t.Fatalf("%q: tools %v, plain decoder %v", body, got.Tools, want.Tools)
		}
	}
	if isPresent(got.Messages) != isPresent(want.Messages) || isPresent(got.MCPServers) != isPresent(want.MCPServers) {
		t.Fatalf("%q: messages/mcp_servers presence %v/%v, plain decoder %v/%v", body,
			isPresent(got.Messages), isPresent(got.MCPServers), isPresent(want.Messages), isPresent(want.MCPServers))
	}
}

// checkOnePassMatches holds walkMessages, the one pass parseMessages
// takes, to the two it stands for: whenever it walks a body, the decoded
// request, its error, the watched strings and the walk's findings are
// what decodeWatched and checkDuplicates give; and it walks every object
// checkDuplicates accepts.
func checkOnePassMatches(t *testing.T, body []byte) {
	t.Helper()
	watch := admissionWatch
	var one, two messageRequest
	scan, hits, walked, err := walkMessages(body, &one, watch)
	twoHits, twoErr := decodeWatched(body, &two, watch)
	twoScan, dupErr := checkDuplicates(body)
	if !walked {
		var obj map[string]json.RawMessage
		if dupErr == nil && json.Unmarshal(body, &obj) == nil && obj != nil {
			t.Fatalf("%q: an object without duplicate keys was not walked", body)
		}
		return
	}
	switch {
	case dupErr != nil:
		t.Fatalf("%q: walked a body checkDuplicates refuses: %v", body, dupErr)
	case hits != twoHits:
		t.Fatalf("%q: watched %b in one pass, %b in two", body, hits, twoHits)
	case (err == nil) != (twoErr == nil) || err != nil && jsonErrText(err) != jsonErrText(twoErr):
		t.Fatalf("%q: error %v in one pass, %v in two", body, err, twoErr)
	case !reflect.DeepEqual(one, two):
		t.Fatalf("%q: decoded %+v in one pass, %+v in two", body, one, two)
	case !reflect.DeepEqual(scan, twoScan):
		t.Fatalf("%q: walk found %+v in one pass, %+v in two", body, scan, twoScan)
	}
}

// anyString reports whether a key or string value anywhere in the decoded
// JSON v is one of names.
func anyString(v any, names ...string) bool {
	switch v := v.(type) {
	case string:
		return slices.Contains(names, v)
	case []any:
		for _, e := range v {
			if anyString(e, names...) {
				return true
			}
		}
	case map[string]any:
		for k, e := range v {
			if slices.Contains(names, k) || anyString(e, names...) {
				return true
			}
		}
	}
	return false
}

// isPresent is what admission asks of messages and mcp_servers: there and
// not null, whether the field keeps the raw value or only that fact.
func isPresent(field any) bool {
	v := reflect.ValueOf(field)
	if v.Kind() == reflect.Bool {
		return v.Bool()
	}
	raw := v.Bytes()
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

func TestDecodeMessagesMatchesPlainDecoder(t *testing.T) {
	for _, c := range slimCases {
		checkSlimMatches(t, []byte(c))
	}
}

func FuzzDecodeMessages(f *testing.F) {
	for _, c := range slimCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkSlimMatches(t, body) })
}

// The bodies real clients send are decoded without encoding/json: the
// fallback gives the same result (checkOnePassMatches) but costs most of
// the parse.
func TestDecodeTopReadsRealBodies(t *testing.T) {
	bodies := []string{
		`{"model":"claude-sonnet-4-6","max_tokens":1024,"stream":false,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"claude-opus-4-1","max_tokens":32000,"stream":true,"system":[{"type":"text","text":"You are Claude Code","cache_control":{"type":"ephemeral"}}],` +
			`"messages":[{"role":"user","content":[{"type":"text","text":"fix the test"}]}],` +
			`"tools":[{"name":"Bash","description":"runs a command","input_schema":{"type":"object","properties":{"command":{"type":"string"}},"required":["command"]}},` +
			`{"type":"web_search_20250305","name":"web_search","max_uses":5}],` +
			`"thinking":{"type":"enabled","budget_tokens":16000},"metadata":{"user_id":"u1"},"temperature":1,"inference_geo":"us","speed":"fast"}`,
	}
	for _, body := range bodies {
		w := newContentWalk()
		if _, err := jsonscan.WalkWatched([]byte(body), w, admissionWatch); err != nil {
			t.Fatal(err)
		}
		var r messageRequest
		if !decodeTop(w.top, &r) {
			t.Errorf("%s: left to encoding/json", body)
		}
		checkOnePassMatches(t, []byte(body))
	}
}
