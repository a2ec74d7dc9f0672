package proxy

import (
	"encoding/json"

	"github.com/clade-gateway/clade-gateway/internal/jsonscan"
)

// requestFields are the top-level keys messageRequest decodes. A key any
// of them matches only as encoding/json's case-insensitive or unescaped
// match would (jsonscan.FormOf) sends the body to encoding/json.
var requestFields = append(append([]string(nil), admittedFields...), "messages", "mcp_servers")

// decodeTop sets r from a walked body's top-level members as
// json.Unmarshal of its slim copy would, without reflection, for the
// spellings real clients send: keys written exactly, plain strings,
// counts in plain digits, true and false. It reports false, with r in
// any state, for anything else (a type error, null, an escape in a key,
// a number encoding/json reads its own way); the caller then decodes the
// slim copy, whose errors are what a client gets.
//
// In the bench's profiles at 300 requests/s, decoding the slim copy with
// encoding/json was most of the parse's CPU: reflection over a struct
// touches far more memory than the few bytes it reads, and between
// requests that memory has gone cold.
func decodeTop(top []member, r *messageRequest) bool {
	for i := range top {
		m := &top[i]
		field := ""
		for _, f := range requestFields {
			switch jsonscan.FormOf(m.key, m.escaped, f) {
			case jsonscan.KeyExact:
				field = f
			case jsonscan.KeyEscaped, jsonscan.KeyCaseVariant:
				return false
			}
		}
		ok := true
		switch field {
		case "model":
			r.Model, ok = plainText(m.val)
		case "max_tokens":
			var n int64
			n, ok = jsonscan.PlainCount(m.val)
			r.MaxTokens = &n
		case "stream":
			switch string(m.val) {
			case "true":
				r.Stream = true
			case "false":
				r.Stream = false
			default:
				ok = false
			}
		case "inference_geo":
			r.InferenceGeo, ok = plainText(m.val)
		case "speed":
			r.Speed, ok = plainText(m.val)
		case "tools":
			r.Tools, ok = decodeTools(m.val)
		case "thinking":
			r.Thinking, ok = decodeThinking(m.val)
		case "messages":
			r.Messages = slimValue(m.val)
		case "mcp_servers":
			r.MCPServers = slimValue(m.val)
		}
		if !ok {
			return false
		}
	}
	return true
}

// plainText reads a JSON string as encoding/json would, when it is one
// and holds nothing encoding/json would replace.
func plainText(raw []byte) (string, bool) {
	s, isString, utf8OK := jsonscan.PlainString(raw)
	return s, isString && utf8OK
}

// slimValue is what a member the slim copy only keeps for its presence
// decodes to as a json.RawMessage: an empty value of its type.
func slimValue(val []byte) json.RawMessage {
	switch val[0] {
	case '"':
		return json.RawMessage(`""`)
	case '{':
		return json.RawMessage(`{}`)
	case '[':
		return json.RawMessage(`[]`)
	}
	return append(json.RawMessage(nil), val...)
}

// decodeTools reads the tools array: each tool's type, the only member
// admission reads.
func decodeTools(val []byte) ([]toolDecl, bool) {
	if val[0] != '[' {
		return nil, false
	}
	tools := []toolDecl{}
	ok := true
	if !jsonscan.Elements(val, func(el []byte) {
		var t toolDecl
		if el[0] != '{' {
			ok = false
			return
		}
		// Elements has validated el: Fields cannot refuse it.
		jsonscan.Fields(el, func(key, v []byte) {
			if key == nil || fieldMatch(key, "type") && string(key) != "type" {
				ok = false // escaped or in other case: encoding/json's to read
				return
			}
			if string(key) == "type" {
				var good bool
				t.Type, good = plainText(v)
				ok = ok && good
			}
		})
		tools = append(tools, t)
	}) {
		return nil, false
	}
	return tools, ok
}

// decodeThinking reads the thinking object's type and budget.
func decodeThinking(val []byte) (*thinkingDecl, bool) {
	if val[0] != '{' {
		return nil, false
	}
	var t thinkingDecl
	ok := true
	if !jsonscan.Fields(val, func(key, v []byte) {
		switch {
		case key == nil:
			ok = false
		case string(key) == "type":
			var good bool
			t.Type, good = plainText(v)
			ok = ok && good
		case string(key) == "budget_tokens":
			n, good := jsonscan.PlainCount(v)
			t.BudgetTokens, ok = &n, ok && good
		case fieldMatch(key, "type"), fieldMatch(key, "budget_tokens"):
			ok = false
		}
	}) {
		return nil, false
	}
	return &t, ok
}

// fieldMatch reports whether encoding/json could take key for field.
func fieldMatch(key []byte, field string) bool {
	return jsonscan.FormOf(string(key), false, field) != jsonscan.KeyOther
}
