package jsonscan

import (
	"strings"
	"testing"
)

// benchBody is a Messages body of about size bytes: mostly conversation
// strings with a few escapes, as admission reads them.
func benchBody(size int) []byte {
	turn := `{"role":"user","content":"` + strings.Repeat("Summarise the paragraph about \\\"budgets\\\". ", 25) + `"},`
	n := max(size/len(turn), 1)
	return []byte(`{"model":"claude-sonnet-4-6","max_tokens":1024,"stream":true,"system":"be brief","messages":[` +
		strings.TrimSuffix(strings.Repeat(turn, n), ",") + `]}`)
}

// BenchmarkValid is the validation every request body gets; its cost is
// per byte (b.SetBytes).
func BenchmarkValid(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int
	}{{"5KB", 5 << 10}, {"1MB", 1 << 20}} {
		body := benchBody(size.bytes)
		b.Run(size.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if !Valid(body) {
					b.Fatal("not valid")
				}
			}
		})
	}
}
