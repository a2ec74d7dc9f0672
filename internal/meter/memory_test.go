package meter

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
)

const (
	bigSize      = 50 << 20 // one line or string of 50 MB
	feedChunk    = 32 << 10
	memoryBudget = 4 << 20 // what one parser may allocate over the whole feed
)

// feedBig writes prefix, then n filler bytes in feedChunk writes from one
// reused buffer (so the test itself allocates nothing big), then suffix.
func feedBig(w io.Writer, prefix string, filler byte, n int, suffix string) {
	w.Write([]byte(prefix))
	chunk := bytes.Repeat([]byte{filler}, feedChunk)
	for n > 0 {
		k := min(n, len(chunk))
		w.Write(chunk[:k])
		n -= k
	}
	w.Write([]byte(suffix))
}

// allocatedDuring reports the bytes allocated while f runs and the heap
// still in use after it (with GC), in bytes.
func allocatedDuring(f func()) (total, retained uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	total = after.TotalAlloc - before.TotalAlloc
	runtime.GC()
	runtime.ReadMemStats(&after)
	if after.HeapAlloc > before.HeapAlloc {
		retained = after.HeapAlloc - before.HeapAlloc
	}
	return total, retained
}

func TestSSEMemoryBoundedOnHugeLines(t *testing.T) {
	tests := []struct {
		name           string
		prefix, suffix string
		filler         byte
		check          func(t *testing.T, r StreamResult)
	}{
		{
			name:   "usage event longer than MaxLine",
			prefix: startEvent + `data: {"type":"message_delta","usage":{"output_tokens":999999},"pad":"`,
			filler: 'a',
			suffix: "\"}\n\n" + deltaEvent + stopEvent,
			check: func(t *testing.T, r StreamResult) {
				if !r.Complete() || r.Usage.OutputTokens != 42 {
					t.Errorf("huge message_delta not dropped or stream lost: %+v", r)
				}
			},
		},
		{
			name:   "type after a huge value",
			prefix: startEvent + `data: {"pad":"`,
			filler: 'b',
			suffix: `","type":"message_delta","usage":{"output_tokens":999999}}` + "\n\n" + deltaEvent + stopEvent,
			check: func(t *testing.T, r StreamResult) {
				if !r.Complete() || r.Usage.OutputTokens != 42 {
					t.Errorf("huge untyped event not dropped or stream lost: %+v", r)
				}
			},
		},
		{
			name:   "huge content_block_delta is counted, not held",
			prefix: startEvent + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"`,
			filler: 'c',
			suffix: "\"}}\n\n" + deltaEvent + stopEvent,
			check: func(t *testing.T, r StreamResult) {
				want := int64(len(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""}}`) + bigSize)
				if !r.Complete() || r.StreamedOutputBytes != want {
					t.Errorf("StreamedOutputBytes = %d, want %d (%+v)", r.StreamedOutputBytes, want, r)
				}
			},
		},
		{
			name:   "huge comment, field name and unknown field",
			prefix: startEvent + ":",
			filler: 'd',
			suffix: "\n" + strings.Repeat("e", 1<<20) + ": x\nid: " + strings.Repeat("f", 1<<20) + "\n" + deltaEvent + stopEvent,
			check: func(t *testing.T, r StreamResult) {
				if !r.Complete() || r.Usage.OutputTokens != 42 {
					t.Errorf("stream lost after huge lines: %+v", r)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p *SSEParser
			total, retained := allocatedDuring(func() {
				p = NewSSEParser(DefaultLimits())
				feedBig(p, tt.prefix, tt.filler, bigSize, tt.suffix)
			})
			tt.check(t, p.Result())
			t.Logf("allocated %d bytes, retained %d", total, retained)
			if total > memoryBudget || retained > memoryBudget {
				t.Errorf("allocated %d bytes, retained %d; want both under %d", total, retained, memoryBudget)
			}
			runtime.KeepAlive(p)
		})
	}
}

func TestJSONMemoryBoundedOnHugeBodies(t *testing.T) {
	usage := `"usage":{"input_tokens":12,"output_tokens":34}`
	tests := []struct {
		name   string
		prefix string
		filler byte
		suffix string
	}{
		{"huge string before usage", `{"id":"msg_1","content":[{"type":"text","text":"`, 'a', `"}],` + usage + `}`},
		// An even run of backslashes is escaped backslashes, so the quote
		// after the last pair closes the string.
		{"huge escaped string after usage", `{"id":"msg_1",` + usage + `,"content":[{"type":"text","text":"`, '\\', `\\"}]}`},
		{"deep nesting", `{"id":"msg_1","content":`, '[', ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var x *JSONExtractor
			total, retained := allocatedDuring(func() {
				x = NewJSONExtractor(DefaultLimits())
				if tt.filler == '[' {
					// 25 MB deep, then closed: no recursion, no stack.
					feedBig(x, tt.prefix, '[', bigSize/2, "")
					feedBig(x, "", ']', bigSize/2, ","+usage+"}")
					return
				}
				feedBig(x, tt.prefix, tt.filler, bigSize, tt.suffix)
			})
			u, ok := x.Result()
			if !ok || u.InputTokens != 12 || u.OutputTokens != 34 || x.ID() != "msg_1" {
				t.Errorf("Result = %+v, %v, id %q", u, ok, x.ID())
			}
			t.Logf("allocated %d bytes, retained %d", total, retained)
			if total > memoryBudget || retained > memoryBudget {
				t.Errorf("allocated %d bytes, retained %d; want both under %d", total, retained, memoryBudget)
			}
			runtime.KeepAlive(x)
		})
	}
}
