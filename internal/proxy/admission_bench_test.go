package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkCredential is the auth lookup of every request: the token out
// of the headers, then the service that owns it.
func BenchmarkCredential(b *testing.B) {
	p := testPolicy(b, "reject")
	h := http.Header{}
	h.Set("X-Api-Key", testToken)
	h.Set("Anthropic-Version", "2023-06-01")
	h.Set("Content-Type", "application/json")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := authenticate(h, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseMessages is admission's read of a Messages body, which
// grows with the conversation: its cost is per byte (b.SetBytes).
func BenchmarkParseMessages(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int
	}{{"5KB", 5 << 10}, {"100KB", 100 << 10}, {"1MB", 1 << 20}} {
		turn := `{"role":"user","content":"` + strings.Repeat("Summarise the paragraph about budgets. ", 25) + `"},`
		n := size.bytes / len(turn)
		body := []byte(`{"model":"claude-sonnet-4-6","max_tokens":1024,"stream":true,"system":"be brief","messages":[` +
			strings.TrimSuffix(strings.Repeat(turn, max(n, 1)), ",") + `]}`)
		b.Run(size.name+"/parse", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parseMessages(body); err != nil {
					b.Fatal(err)
				}
			}
		})
		// What parseMessages cost before decodeMessages (slim.go): the
		// whole body through json.Unmarshal.
		b.Run(size.name+"/unmarshal", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var r messageRequest
				if err := json.Unmarshal(body, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
