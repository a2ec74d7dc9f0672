package fakeupstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// DefaultUsage is what a request gets when Behave does not say otherwise.
var defaultUsage = Usage{InputTokens: 1200, OutputTokens: 300}

func (s *Server) serveMessages(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var req struct {
		Model     string `json:"model"`
		Stream    bool   `json:"stream"`
		MaxTokens int64  `json:"max_tokens"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Model == "" {
		writeErr(w, http.StatusBadRequest, "invalid_request_error", "invalid request")
		return
	}
	b := Behavior{Usage: defaultUsage}
	if s.Behave != nil {
		// Behave may read the body to bill what the request asked for.
		r.Body = io.NopCloser(bytes.NewReader(body))
		b = s.Behave(r, req.Model, req.Stream)
	}
	if len(b.Text) == 0 {
		b.Text = []string{"Hello", "!", " How can I help?"}
	}
	// The API stops an answer at max_tokens: it never bills more output
	// than the request allowed, unless a test asks for impossible usage.
	stop := "end_turn"
	if !b.Impossible && req.MaxTokens > 0 && b.Usage.OutputTokens > req.MaxTokens {
		b.Usage.OutputTokens, stop = req.MaxTokens, "max_tokens"
	}
	if b.Hang {
		<-r.Context().Done()
		return
	}
	if b.TTFB > 0 {
		select {
		case <-time.After(b.TTFB):
		case <-r.Context().Done():
			return
		}
	}
	if b.Status != 0 && b.Status != http.StatusOK {
		typ := map[int]string{429: "rate_limit_error", 500: "api_error", 529: "overloaded_error", 400: "invalid_request_error"}[b.Status]
		if typ == "" {
			typ = "api_error"
		}
		writeErr(w, b.Status, typ, "fake upstream error")
		return
	}
	m := req.Model
	if s.Model != "" {
		m = s.Model
	}
	id := fmt.Sprintf("msg_fake_%d", time.Now().UnixNano())
	if !req.Stream {
		s.messages.Add(1)
		s.addTruth(b.Usage, m, received)
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "type": "message", "role": "assistant", "model": m,
			"content":     []any{map[string]any{"type": "text", "text": strings.Join(b.Text, "")}},
			"stop_reason": stop, "stop_sequence": nil,
			"usage": override(usageJSON(b.Usage, true), b.UsageOverride),
		})
		return
	}
	s.messages.Add(1)
	s.stream(w, r, b, id, m, stop, received)
}

func usageJSON(u Usage, full bool) map[string]any {
	out := map[string]any{
		"input_tokens":                u.InputTokens,
		"cache_creation_input_tokens": u.CacheCreation,
		"cache_read_input_tokens":     u.CacheRead,
		"output_tokens":               u.OutputTokens,
	}
	if u.WebSearch > 0 {
		out["server_tool_use"] = map[string]any{"web_search_requests": u.WebSearch}
	}
	if len(u.Iterations) > 0 {
		out["iterations"] = u.Iterations
	}
	if full {
		c5, c1 := u.Cache5m, u.Cache1h
		if c5 == 0 && c1 == 0 {
			c5 = u.CacheCreation
		}
		out["cache_creation"] = map[string]any{"ephemeral_5m_input_tokens": c5, "ephemeral_1h_input_tokens": c1}
		tier := u.ServiceTier
		if tier == "" {
			tier = "standard"
		}
		geo := u.InferenceGeo
		if geo == "" {
			geo = "global"
		}
		out["service_tier"], out["inference_geo"] = tier, geo
		if u.Speed != "" {
			out["speed"] = u.Speed
		}
	}
	return out
}

// override returns usage with the fields of o put over it.
func override(usage, o map[string]any) map[string]any {
	for k, v := range o {
		if v == nil {
			delete(usage, k)
			continue
		}
		usage[k] = v
	}
	return usage
}

// stream writes a Messages SSE stream: message_start with the input side
// and a placeholder output count, text deltas, a ping, the cumulative
// message_delta, message_stop.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, b Behavior, id, model, stop string, received time.Time) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	start := usageJSON(b.Usage, true)
	start["output_tokens"] = 1
	delete(start, "iterations") // the final breakdown comes with message_delta
	events := []string{
		ev("message_start", map[string]any{"type": "message_start", "message": map[string]any{
			"id": id, "type": "message", "role": "assistant", "model": model, "content": []any{},
			"stop_reason": nil, "stop_sequence": nil, "usage": override(start, b.UsageOverride)}}),
	}
	idx := 0
	if b.Redacted {
		events = append(events,
			ev("content_block_start", map[string]any{"type": "content_block_start", "index": idx,
				"content_block": map[string]any{"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIw"}}),
			ev("content_block_stop", map[string]any{"type": "content_block_stop", "index": idx}))
		idx++
	}
	if len(b.Thinking) > 0 {
		events = append(events, ev("content_block_start", map[string]any{"type": "content_block_start", "index": idx,
			"content_block": map[string]any{"type": "thinking", "thinking": "", "signature": ""}}))
		for _, t := range b.Thinking {
			events = append(events, ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": idx,
				"delta": map[string]any{"type": "thinking_delta", "thinking": t}}))
		}
		events = append(events, ev("content_block_stop", map[string]any{"type": "content_block_stop", "index": idx}))
		idx++
	}
	events = append(events,
		ev("content_block_start", map[string]any{"type": "content_block_start", "index": idx, "content_block": map[string]any{"type": "text", "text": ""}}),
		"event: ping\ndata: {\"type\": \"ping\"}\n\n",
	)
	for _, t := range b.Text {
		events = append(events, ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": idx,
			"delta": map[string]any{"type": "text_delta", "text": t}}))
	}
	events = append(events,
		ev("content_block_stop", map[string]any{"type": "content_block_stop", "index": idx}),
		ev("message_delta", map[string]any{"type": "message_delta",
			"delta": map[string]any{"stop_reason": stop, "stop_sequence": nil}, "usage": override(usageJSON(b.Usage, false), b.UsageOverride)}),
		ev("message_stop", map[string]any{"type": "message_stop"}),
	)
	for i, e := range events {
		if b.CutAfterEvents > 0 && i == b.CutAfterEvents {
			// Cut mid-event: half an event, then the connection dies.
			_, _ = io.WriteString(w, e[:len(e)/2])
			if fl != nil {
				fl.Flush()
			}
			panic(http.ErrAbortHandler)
		}
		if b.ErrorAfterEvents > 0 && i == b.ErrorAfterEvents {
			_, _ = io.WriteString(w, "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n")
			if fl != nil {
				fl.Flush()
			}
			return
		}
		if i > 0 && b.EventSpacing > 0 {
			select {
			case <-time.After(b.EventSpacing):
			case <-r.Context().Done():
				return
			}
		}
		if _, err := io.WriteString(w, e); err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
	}
	s.addTruth(b.Usage, model, received)
}

// ev writes one SSE event. The API writes an event's "type" as its first
// key, and readers (the gateway's meter among them) may rely on that;
// encoding/json would sort it after "delta" and "index".
func ev(name string, v map[string]any) string {
	typ, _ := json.Marshal(v["type"])
	rest := make(map[string]any, len(v))
	for k, x := range v {
		if k != "type" {
			rest[k] = x
		}
	}
	data, _ := json.Marshal(rest)
	if len(rest) > 0 {
		data = append([]byte(`{"type":`+string(typ)+","), data[1:]...)
	} else {
		data = []byte(`{"type":` + string(typ) + "}")
	}
	return "event: " + name + "\ndata: " + string(data) + "\n\n"
}
