package fakeupstream

import (
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
		b = s.Behave(r, req.Model, req.Stream)
	}
	if len(b.Text) == 0 {
		b.Text = []string{"Hello", "!", " How can I help?"}
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
			"stop_reason": "end_turn", "stop_sequence": nil,
			"usage": usageJSON(b.Usage, true),
		})
		return
	}
	s.messages.Add(1)
	s.stream(w, r, b, id, m, received)
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
	}
	return out
}

// stream writes a Messages SSE stream: message_start with the input side
// and a placeholder output count, text deltas, a ping, the cumulative
// message_delta, message_stop.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, b Behavior, id, model string, received time.Time) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	start := usageJSON(b.Usage, true)
	start["output_tokens"] = 1
	events := []string{
		ev("message_start", map[string]any{"type": "message_start", "message": map[string]any{
			"id": id, "type": "message", "role": "assistant", "model": model, "content": []any{},
			"stop_reason": nil, "stop_sequence": nil, "usage": start}}),
		ev("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}}),
		"event: ping\ndata: {\"type\": \"ping\"}\n\n",
	}
	for _, t := range b.Text {
		events = append(events, ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]any{"type": "text_delta", "text": t}}))
	}
	events = append(events,
		ev("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0}),
		ev("message_delta", map[string]any{"type": "message_delta",
			"delta": map[string]any{"stop_reason": "end_turn", "stop_sequence": nil}, "usage": usageJSON(b.Usage, false)}),
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

func ev(name string, v any) string {
	data, _ := json.Marshal(v)
	return "event: " + name + "\ndata: " + string(data) + "\n\n"
}
