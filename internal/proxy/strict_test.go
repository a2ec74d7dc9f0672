package proxy

import (
	"strings"
	"testing"
	"time"
)

const msgs = `"messages":[{"role":"user","content":"hi"}]`

func TestParseMessagesRefusesAmbiguousBodies(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"duplicate model", `{"model":"claude-haiku-4-5","model":"claude-opus-4-1","max_tokens":1,` + msgs + `}`, `duplicate key "model"`},
		{"duplicate by escape", `{"model":"claude-haiku-4-5","\u006dodel":"claude-opus-4-1","max_tokens":1,` + msgs + `}`, `duplicate key "model"`},
		{"case variant of a priced field", `{"model":"claude-haiku-4-5","Max_Tokens":1000000,"max_tokens":1,` + msgs + `}`, `"Max_Tokens": unknown field`},
		{"case variant alone", `{"Model":"claude-opus-4-1","model":"claude-haiku-4-5","max_tokens":1,` + msgs + `}`, `"Model": unknown field`},
		{"escaped priced key", `{"model":"claude-haiku-4-5","max\u005ftokens":1,` + msgs + `}`, `max_tokens: the key must be written without escapes`},
		{"duplicate deep in a tool input", `{"model":"m","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n","input":{"a":1,"a":2}}]}]}`, `duplicate key "a"`},
		{"duplicate as read: invalid UTF-8 reads as U+FFFD", "{\"model\":\"m\",\"max_tokens\":1," + msgs + ",\"metadata\":{\"a\xff\":1,\"a\xfe\":2}}", "duplicate key \"a\uFFFD\""},
		{"duplicate among many keys", `{"model":"m","max_tokens":1,` + msgs + `,"metadata":{"k1":1,"k2":1,"k3":1,"k4":1,"k5":1,"k6":1,"k7":1,"k8":1,"k9":1,"k10":1,"k11":1,"k12":1,"k13":1,"k14":1,"k15":1,"k16":1,"k17":1,"k3":2}}`, `duplicate key "k3"`},
		{"exponent count", `{"model":"m","max_tokens":1e3,` + msgs + `}`, `max_tokens`},
		{"fractional count", `{"model":"m","max_tokens":100.0,` + msgs + `}`, `max_tokens`},
		{"string count", `{"model":"m","max_tokens":"100",` + msgs + `}`, `max_tokens`},
		{"fallback count with exponent", `{"model":"m","max_tokens":1,` + msgs + `,"fallbacks":[{"model":"n","max_tokens":1E6}]}`, `fallbacks[0].max_tokens: must be a non-negative integer`},
		{"fallback case variant", `{"model":"m","max_tokens":1,` + msgs + `,"fallbacks":[{"model":"n","Model":"o"}]}`, `fallbacks[0]."Model": unknown field`},
		{"tool type case variant", `{"model":"m","max_tokens":1,` + msgs + `,"tools":[{"Type":"web_search_20250305","name":"w"}]}`, `tools[0]."Type": unknown field`},
		{"model not a string", `{"model":["a"],"max_tokens":1,` + msgs + `}`, `model`},
		{"advisor without max_uses", `{"model":"m","max_tokens":1,` + msgs + `,"tools":[{"type":"advisor_20260301","name":"advisor","model":"n","max_tokens":10}]}`, `max_uses is required`},
		{"advisor without max_tokens", `{"model":"m","max_tokens":1,` + msgs + `,"tools":[{"type":"advisor_20260301","name":"advisor","model":"n","max_uses":2}]}`, `max_tokens is required`},
	}
	for _, tt := range tests {
		_, err := parseMessages([]byte(tt.body))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tt.name, err, tt.want)
			continue
		}
		if e := statusFor(err, time.Now()); e.Status != 400 {
			t.Errorf("%s: status %d, want 400", tt.name, e.Status)
		}
	}
}

func TestParseMessagesBounds(t *testing.T) {
	img := func(src string) string {
		return `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":` + src + `}]}]}`
	}
	tests := []struct {
		name, body string
		pointer    bool
		server     bool
		extra      int64
		unknown    int
		geoDefault bool
	}{
		{name: "plain text", body: `{"model":"m","max_tokens":1,"inference_geo":"global",` + msgs + `}`},
		{name: "no inference_geo", body: `{"model":"m","max_tokens":1,` + msgs + `}`, geoDefault: true},
		{name: "image by url", body: img(`{"type":"url","url":"https://example.invalid/a.png"}`), pointer: true, geoDefault: true},
		{name: "image by file", body: img(`{"type":"file","file_id":"file_1"}`), pointer: true, geoDefault: true},
		{name: "base64 image", body: img(`{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}`), pointer: true, geoDefault: true},
		{name: "base64 pdf", body: `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}]}]}`, pointer: true, geoDefault: true},
		{name: "plain text document", body: `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"abc"}}]}]}`, geoDefault: true},
		{name: "document by url in a tool result", body: `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"document","source":{"type":"url","url":"https://example.invalid/a.pdf"}}]}]}]}`, pointer: true, geoDefault: true},
		{name: "container upload", body: `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"container_upload","file_id":"file_2"}]}]}`, pointer: true, server: true, geoDefault: true},
		{name: "unknown block type", body: `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"video","uri":"x"}]}]}`, pointer: true, geoDefault: true},
		{name: "system image", body: `{"model":"m","max_tokens":1,"system":[{"type":"image","source":{"type":"url","url":"u"}}],` + msgs + `}`, pointer: true, geoDefault: true},
		{name: "skills", body: `{"model":"m","max_tokens":1,` + msgs + `,"container":{"skills":[{"type":"anthropic","skill_id":"pdf"}]}}`, pointer: true, server: true, geoDefault: true},
		{name: "web search", body: `{"model":"m","max_tokens":1,` + msgs + `,"tools":[{"type":"web_search_20260318","name":"web_search"}]}`, server: true, geoDefault: true},
		{name: "compaction", body: `{"model":"m","max_tokens":1,` + msgs + `,"context_management":{"edits":[{"type":"compact_20260112"}]}}`, server: true, geoDefault: true},
		{name: "computer use", body: `{"model":"m","max_tokens":1,` + msgs + `,"tools":[{"type":"computer_20251124","name":"computer","display_width_px":1,"display_height_px":1}]}`, extra: 5000, geoDefault: true},
		{name: "unknown tool", body: `{"model":"m","max_tokens":1,` + msgs + `,"tools":[{"type":"web_search_20271231","name":"web_search"}]}`, unknown: 1, geoDefault: true},
		{name: "custom tool", body: `{"model":"m","max_tokens":1,` + msgs + `,"tools":[{"name":"get","input_schema":{"type":"object","properties":{"Type":{"type":"string"},"source":{"type":"url"}}}}]}`, geoDefault: true},
	}
	for _, tt := range tests {
		p, err := parseMessages([]byte(tt.body))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		b := p.Bounds
		if (b.Pointer != "") != tt.pointer || b.ServerSide != tt.server || b.ExtraPromptTokens != tt.extra ||
			len(b.UnknownTools) != tt.unknown || b.GeoDefault != tt.geoDefault {
			t.Errorf("%s: bounds = %+v, want pointer %v server %v extra %d unknown %d geoDefault %v",
				tt.name, b, tt.pointer, tt.server, tt.extra, tt.unknown, tt.geoDefault)
		}
	}
}

func TestParseMessagesOtherModels(t *testing.T) {
	body := `{"model":"claude-haiku-4-5","max_tokens":100,` + msgs + `,
		"fallbacks":[{"model":"claude-sonnet-4-6"},{"model":"claude-opus-4-1","max_tokens":50,"speed":"fast"}],
		"tools":[{"type":"advisor_20260301","name":"advisor","model":"claude-fable-5-1","max_uses":3,"max_tokens":700}]}`
	p, err := parseMessages([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	got := p.Bounds
	want := []modelUse{{Model: "claude-sonnet-4-6", MaxTokens: 100, Uses: 1}, {Model: "claude-opus-4-1", MaxTokens: 50, Fast: true, Uses: 1}}
	if len(got.Fallbacks) != 2 || got.Fallbacks[0] != want[0] || got.Fallbacks[1] != want[1] {
		t.Errorf("Fallbacks = %+v, want %+v", got.Fallbacks, want)
	}
	if len(got.Advisors) != 1 || got.Advisors[0] != (modelUse{Model: "claude-fable-5-1", MaxTokens: 700, Uses: 3}) {
		t.Errorf("Advisors = %+v", got.Advisors)
	}
	if m := got.Models(); strings.Join(m, ",") != "claude-sonnet-4-6,claude-opus-4-1,claude-fable-5-1" {
		t.Errorf("Models() = %v", m)
	}
}

func TestCheckBatchBody(t *testing.T) {
	p := `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`
	for body, want := range map[string]string{
		`{"requests":[{"custom_id":"a","params":` + p + `}]}`:                                      "",
		`{"requests":[{"custom_id":"a","params":` + p + `}],"requests":[]}`:                        `duplicate key "requests"`,
		`{"Requests":[{"custom_id":"a","params":` + p + `}],"requests":[]}`:                        `"Requests": unknown field`,
		`{"requests":[{"custom_id":"a","params":` + p + `,"Params":` + p + `}]}`:                   `requests[0]."Params": unknown field`,
		`{"requests":[{"custom_id":"a","params":{"model":"m","model":"n","max_tokens":1}}]}`:       `duplicate key "model"`,
		`{"requests":[{"custom_id":"a","params":` + p + `},{"custom_id":"b","params":` + p + `}]}`: "",
		`{"requests":[{"custom_id":"a","params":` + p:                                              "request body is not valid JSON",
		`{"requests":`: "request body is not valid JSON",
	} {
		err := checkBatchBody([]byte(body))
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: err = %v, want %q", body, err, want)
		}
	}
}
