package fakeupstream

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The API writes each event's "type" first; a fake that sorted keys (as
// encoding/json does for maps) would send "delta" and "index" before it
// and make a reader that relies on the order pay for a wire format the
// API never sends.
func TestStreamEventsWriteTheirTypeFirst(t *testing.T) {
	const key = "sk-ant-api03-fake"
	f := New(key)
	f.Behave = func(*http.Request, string, bool) Behavior {
		return Behavior{Thinking: []string{"hm"}, Redacted: true, Text: []string{"Hel", "lo"}}
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages",
		strings.NewReader(`{"model":"claude-sonnet-4-6","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("X-Api-Key", key)
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("Content-Type", "application/json")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	var event string
	seen := map[string]int{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "event: "); ok {
			event = name
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		seen[event]++
		if !strings.HasPrefix(data, `{"type":`) && !strings.HasPrefix(data, `{"type": `) {
			t.Errorf("%s event data does not start with its type: %s", event, data)
		}
		var v struct{ Type string }
		if err := json.Unmarshal([]byte(data), &v); err != nil || v.Type != event {
			t.Errorf("%s event data %s: type %q, err %v", event, data, v.Type, err)
		}
	}
	for _, want := range []string{"message_start", "content_block_start", "content_block_delta", "content_block_stop", "ping", "message_delta", "message_stop"} {
		if seen[want] == 0 {
			t.Errorf("no %s event in the stream (saw %v)", want, seen)
		}
	}
}
