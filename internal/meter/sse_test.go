package meter

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	startEvent = `event: message_start
data: {"type":"message_start","message":{"id":"msg_1","model":"claude-opus-5","usage":{"input_tokens":10,"output_tokens":1}}}

`
	deltaEvent = `event: message_delta
data: {"type":"message_delta","usage":{"output_tokens":42}}

`
	stopEvent = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	textDelta = `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}` + "\n\n"
)

func TestSSECases(t *testing.T) {
	started := StreamResult{
		Usage:     Usage{Model: "claude-opus-5", InputTokens: 10, OutputTokens: 1},
		MessageID: "msg_1",
		SawStart:  true,
	}
	done := started
	done.Usage.OutputTokens, done.SawDelta, done.SawStop = 42, true, true

	tests := []struct {
		name   string
		limits Limits
		in     string
		want   StreamResult
	}{
		{name: "complete", in: startEvent + deltaEvent + stopEvent, want: done},
		{name: "BOM is skipped", in: "\xEF\xBB\xBF" + startEvent + deltaEvent + stopEvent, want: done},
		{
			// A stream starting with part of a BOM: those bytes belong to the
			// first field name, which is then not "event" and not "data".
			name: "partial BOM is data",
			in:   "\xEF\xBB" + "data: {\"type\":\"message_stop\"}\n\n" + startEvent,
			want: started,
		},
		{name: "no final blank line: last event not dispatched", in: startEvent + deltaEvent + strings.TrimSuffix(stopEvent, "\n"), want: func() StreamResult {
			r := done
			r.SawStop = false
			return r
		}()},
		{name: "data field without colon is an empty data line", in: "data\n\n" + startEvent, want: started},
		{
			name: "event name does not decide, the payload type does",
			in: startEvent + "event: ping\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":42}}\n\n" +
				"event: message_delta\ndata: {\"type\":\"ping\",\"usage\":{\"output_tokens\":7}}\n\n" + stopEvent,
			want: done,
		},
		{name: "escaped type", in: startEvent + deltaEvent + "data: {\"type\":\"message\\u005fstop\"}\n\n", want: done},
		{name: "message_stop with trailing garbage is not a stop", in: startEvent + deltaEvent + "data: {\"type\":\"message_stop\"}x\n\n", want: func() StreamResult {
			r := done
			r.SawStop = false
			return r
		}()},
		{name: "second message_start replaces the first", in: startEvent + deltaEvent + strings.ReplaceAll(startEvent, "msg_1", "msg_2") + stopEvent, want: func() StreamResult {
			r := started
			r.MessageID, r.SawStop = "msg_2", true // the stop after the new start
			return r
		}()},
		{name: "message_start without usage is not a start", in: "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n", want: StreamResult{}},
		{name: "message_delta with null usage changes nothing", in: startEvent + "data: {\"type\":\"message_delta\",\"usage\":null}\n\n", want: started},
		{name: "error without a type", in: startEvent + "data: {\"type\":\"error\",\"error\":\"boom\"}\n\n", want: func() StreamResult {
			r := started
			r.ErrorType = "error"
			return r
		}()},
		{name: "invalid error payload records nothing", in: startEvent + "data: {\"type\":\"error\",\n\n", want: started},
		{name: "type after other keys", in: "data: {\"message\":{\"id\":\"msg_1\",\"model\":\"claude-opus-5\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}},\"type\":\"message_start\"}\n\n", want: started},
		{name: "long field names and unknown fields are skipped", in: "eventeventevent: x\nid: 7\nretry: 10\n" + startEvent, want: started},
		{
			name:   "usage event longer than MaxLine is dropped, the stream parses on",
			limits: Limits{MaxLine: 80},
			in:     startEvent + deltaEvent + stopEvent,
			want:   StreamResult{Usage: Usage{OutputTokens: 42}, SawDelta: true, SawStop: true},
		},
		{
			// The type is still unknown when the limit is hit.
			name:   "MaxLine while the type is unknown",
			limits: Limits{MaxLine: 40},
			in:     "data: {\"pad\":\"" + strings.Repeat("x", 100) + "\",\"type\":\"message_delta\",\"usage\":{\"output_tokens\":5}}\n\n" + textDelta,
			want:   StreamResult{StreamedOutputBytes: int64(len(textDelta) - len("data: \n\n"))},
		},
		{name: "error event", in: startEvent + textDelta + "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n", want: func() StreamResult {
			r := started
			r.ErrorType, r.StreamedOutputBytes = "overloaded_error", int64(len(textDelta)-len("data: \n\n"))
			return r
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			got := sseChunks(tt.limits, in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got := sseChunks(tt.limits, bytewise(in)...); got != tt.want {
				t.Errorf("byte by byte differs: %s", cmp.Diff(tt.want, got))
			}
		})
	}
}

// MaxLine is inclusive: data of exactly MaxLine bytes is decoded.
func TestSSEMaxLineBoundary(t *testing.T) {
	data := `{"type":"message_delta","usage":{"output_tokens":42}}`
	in := "data: " + data + "\n\n"
	for _, tt := range []struct {
		maxLine  int
		wantSeen bool
	}{{len(data), true}, {len(data) - 1, false}} {
		got := sseChunks(Limits{MaxLine: tt.maxLine}, []byte(in))
		if got.SawDelta != tt.wantSeen {
			t.Errorf("MaxLine %d: SawDelta = %v, want %v", tt.maxLine, got.SawDelta, tt.wantSeen)
		}
	}
}

func TestSSEResultMidStream(t *testing.T) {
	p := NewSSEParser(DefaultLimits())
	steps := []struct {
		in           string
		wantComplete bool
		wantOutput   int64
	}{
		{startEvent, false, 1},
		{textDelta, false, 1},
		{deltaEvent, false, 42},
		{stopEvent[:10], false, 42},
		{stopEvent[10:], true, 42},
	}
	for i, s := range steps {
		p.Write([]byte(s.in))
		r := p.Result()
		if r.Complete() != s.wantComplete || r.Usage.OutputTokens != s.wantOutput {
			t.Errorf("step %d: Complete %v output %d, want %v %d", i, r.Complete(), r.Usage.OutputTokens, s.wantComplete, s.wantOutput)
		}
	}
}

func TestSSEClose(t *testing.T) {
	p := NewSSEParser(Limits{})
	if n, err := p.Write([]byte(startEvent)); n != len(startEvent) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte(deltaEvent)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if !p.Result().SawStart {
		t.Error("Result after Close lost the stream")
	}
}

func TestComplete(t *testing.T) {
	for _, tt := range []struct {
		r    StreamResult
		want bool
	}{
		{StreamResult{SawStart: true, SawDelta: true, SawStop: true}, true},
		{StreamResult{SawStart: true, SawDelta: true, SawStop: true, ErrorType: "overloaded_error"}, false},
		{StreamResult{SawStart: true, SawDelta: true}, false},
		{StreamResult{SawStart: true, SawStop: true}, false},
		{StreamResult{SawDelta: true, SawStop: true}, false},
	} {
		if got := tt.r.Complete(); got != tt.want {
			t.Errorf("%+v.Complete() = %v, want %v", tt.r, got, tt.want)
		}
	}
}

// After warm-up, events that carry no usage cost no allocation at all.
func TestSSENonUsageEventsDoNotAllocate(t *testing.T) {
	p := NewSSEParser(DefaultLimits())
	p.Write([]byte(startEvent))
	events := [][]byte{
		[]byte(textDelta),
		[]byte("event: ping\ndata: {\"type\": \"ping\"}\n\n"),
		[]byte("event: content_block_start\r\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\r\n\r\n"),
		[]byte(": keep-alive\n\n"),
		[]byte("data: {\"type\":\"content_block_stop\",\"index\":1}\n\n"),
	}
	allocs := testing.AllocsPerRun(200, func() {
		for _, e := range events {
			p.Write(e)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per round of non-usage events, want 0", allocs)
	}
	if want := int64(200+1) * int64(len(textDelta)-len("data: \n\n")); p.Result().StreamedOutputBytes != want {
		t.Errorf("StreamedOutputBytes = %d, want %d", p.Result().StreamedOutputBytes, want)
	}
}

func TestEstimateInterrupted(t *testing.T) {
	start := Usage{Model: "m", InputTokens: 100, CacheReadInputTokens: 50, OutputTokens: 3}
	tests := []struct {
		name      string
		r         StreamResult
		maxTokens int64
		want      Usage
	}{
		{name: "no message_start: nothing known", r: StreamResult{StreamedOutputBytes: 500}, maxTokens: 1000, want: Usage{}},
		{name: "bytes bound the output", r: StreamResult{Usage: start, SawStart: true, StreamedOutputBytes: 500}, maxTokens: 1000,
			want: Usage{Model: "m", InputTokens: 100, CacheReadInputTokens: 50, OutputTokens: 500}},
		{name: "capped at max_tokens", r: StreamResult{Usage: start, SawStart: true, StreamedOutputBytes: 5000}, maxTokens: 1000,
			want: Usage{Model: "m", InputTokens: 100, CacheReadInputTokens: 50, OutputTokens: 1000}},
		{name: "no max_tokens: no cap", r: StreamResult{Usage: start, SawStart: true, StreamedOutputBytes: 5000},
			want: Usage{Model: "m", InputTokens: 100, CacheReadInputTokens: 50, OutputTokens: 5000}},
		{name: "reported output above the bound is kept", r: StreamResult{Usage: Usage{OutputTokens: 900}, SawStart: true, SawDelta: true, StreamedOutputBytes: 10}, maxTokens: 1000,
			want: Usage{OutputTokens: 900}},
		{name: "error after a delta is still interrupted", r: StreamResult{Usage: start, SawStart: true, SawDelta: true, SawStop: true, ErrorType: "overloaded_error", StreamedOutputBytes: 20}, maxTokens: 1000,
			want: Usage{Model: "m", InputTokens: 100, CacheReadInputTokens: 50, OutputTokens: 20}},
		{name: "complete stream: usage as reported", r: StreamResult{Usage: start, SawStart: true, SawDelta: true, SawStop: true, StreamedOutputBytes: 999}, maxTokens: 1000,
			want: start},
		{name: "absurd byte count clamps", r: StreamResult{SawStart: true, StreamedOutputBytes: 1 << 62},
			want: Usage{OutputTokens: maxCount}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, EstimateInterrupted(tt.r, tt.maxTokens)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// The estimate of a real interrupted fixture: input from message_start,
// output bounded by the two delta events that arrived whole.
func TestEstimateInterruptedFixture(t *testing.T) {
	r := sseChunks(DefaultLimits(), readFile(t, filepath.Join("testdata", "stream_interrupted.sse")))
	if r.Complete() {
		t.Fatal("interrupted fixture reads as complete")
	}
	u := EstimateInterrupted(r, 4096)
	if u.InputTokens != 1500 || u.CacheWrite5mTokens != 256 || u.OutputTokens != 212 {
		t.Errorf("estimate = %+v, want input 1500, 5m writes 256, output 212", u)
	}
	if u := EstimateInterrupted(r, 100); u.OutputTokens != 100 {
		t.Errorf("with max_tokens 100: output %d, want 100", u.OutputTokens)
	}
}
