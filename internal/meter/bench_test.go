package meter

import (
	"bytes"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
)

// realisticStream is a 200-event text stream shaped like the reference
// transcript: message_start, a ping, one text block of 194 deltas, then
// message_delta and message_stop.
func realisticStream() (stream []byte, events int) {
	var b bytes.Buffer
	b.WriteString(`event: message_start
data: {"type":"message_start","message":{"id":"msg_01G8x","type":"message","role":"assistant","model":"claude-opus-5-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":4096,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard","inference_geo":"global"}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

`)
	for i := 0; i < 194; i++ {
		fmt.Fprintf(&b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"token %d of the answer, \\\"quoted\\\"\"}}\n\n", i)
	}
	b.WriteString(`event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":4096,"output_tokens":1950}}

event: message_stop
data: {"type":"message_stop"}

`)
	return b.Bytes(), 200
}

// writeChunks feeds b in writes of at most n bytes, as a proxy's reads
// would hand them over.
func writeChunks(p interface{ Write([]byte) (int, error) }, b []byte, n int) {
	for len(b) > 0 {
		k := min(n, len(b))
		p.Write(b[:k])
		b = b[k:]
	}
}

func BenchmarkSSEParser(b *testing.B) {
	stream, events := realisticStream()
	for _, chunk := range []int{512, 32 << 10} {
		b.Run(fmt.Sprintf("chunk=%d", chunk), func(b *testing.B) {
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			for b.Loop() {
				p := NewSSEParser(DefaultLimits())
				writeChunks(p, stream, chunk)
				if !p.Result().Complete() {
					b.Fatal("stream not complete")
				}
			}
			runtime.ReadMemStats(&ms1)
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N*events), "allocs/event")
		})
	}
}

// BenchmarkSSENonUsageEvents measures the steady state: a parser already
// past message_start receiving content deltas and pings.
func BenchmarkSSENonUsageEvents(b *testing.B) {
	delta := []byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"some words\"}}\n\n")
	ping := []byte("event: ping\ndata: {\"type\": \"ping\"}\n\n")
	p := NewSSEParser(DefaultLimits())
	p.Write([]byte(startEvent))
	b.SetBytes(int64(len(delta) + len(ping)))
	b.ReportAllocs()
	for b.Loop() {
		p.Write(delta)
		p.Write(ping)
	}
}

func BenchmarkJSONExtractor(b *testing.B) {
	for _, name := range []string{"json_text.json", "json_web_search.json"} {
		body := readFile(b, filepath.Join("testdata", name))
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				x := NewJSONExtractor(DefaultLimits())
				x.Write(body)
				if _, ok := x.Result(); !ok {
					b.Fatal("usage not found")
				}
			}
		})
	}
	// A long answer: 1 MB of text content, usage at the end.
	big := []byte(`{"id":"msg_1","model":"claude-opus-5","content":[{"type":"text","text":"` +
		string(bytes.Repeat([]byte(`lorem ipsum \"dolor\" sit amet \n`), 1<<20/32)) +
		`"}],"usage":{"input_tokens":12,"output_tokens":34}}`)
	b.Run("1MB-text", func(b *testing.B) {
		b.SetBytes(int64(len(big)))
		b.ReportAllocs()
		for b.Loop() {
			x := NewJSONExtractor(DefaultLimits())
			writeChunks(x, big, 32<<10)
			if _, ok := x.Result(); !ok {
				b.Fatal("usage not found")
			}
		}
	})
}
