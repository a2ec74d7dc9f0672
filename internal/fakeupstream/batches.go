package fakeupstream

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

type fakeBatch struct {
	id       string
	requests []batchReq
	polls    int
	created  time.Time
	canceled bool
	seq      int
	billed   bool // its results are in Answered
}

type batchReq struct {
	CustomID string `json:"custom_id"`
	Params   struct {
		Model string `json:"model"`
	} `json:"params"`
}

// BatchUsage is the usage each succeeded batch result reports.
var BatchUsage = Usage{InputTokens: 1200, OutputTokens: 300, ServiceTier: "batch"}

// batchEndsAfterPolls: a batch reports ended from this many retrievals on.
const batchEndsAfterPolls = 1

func (s *Server) serveBatches(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/v1/messages/batches")
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case rest == "" && r.Method == http.MethodPost:
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Requests []batchReq `json:"requests"`
		}
		if err := json.Unmarshal(body, &req); err != nil || len(req.Requests) == 0 {
			writeErr(w, http.StatusBadRequest, "invalid_request_error", "requests required")
			return
		}
		s.batchSeq++
		b := &fakeBatch{id: fmt.Sprintf("msgbatch_fake%04d", s.batchSeq), requests: req.Requests, created: time.Now(), seq: s.batchSeq}
		s.batches[b.id] = b
		writeJSON(w, http.StatusOK, s.batchObject(b))
	case rest == "" && r.Method == http.MethodGet:
		items := make([]pageItem, 0, len(s.batches))
		for _, b := range s.batches {
			items = append(items, pageItem{id: b.id, seq: b.seq, v: s.batchObject(b)})
		}
		writePage(w, r, items)
	default:
		id, tail, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
		b, ok := s.batches[id]
		if !ok {
			writeErr(w, http.StatusNotFound, "not_found_error", "batch not found")
			return
		}
		switch {
		case tail == "" && r.Method == http.MethodGet:
			b.polls++
			writeJSON(w, http.StatusOK, s.batchObject(b))
		case tail == "cancel" && r.Method == http.MethodPost:
			b.canceled = true
			writeJSON(w, http.StatusOK, s.batchObject(b))
		case tail == "results" && r.Method == http.MethodGet:
			if !b.ended() {
				writeErr(w, http.StatusBadRequest, "invalid_request_error", "batch has not ended")
				return
			}
			s.resultsGet.Add(1)
			if !b.billed && !b.canceled {
				b.billed = true
				for _, rq := range b.requests {
					s.answer(b.created, rq.Params.Model, BatchUsage)
				}
			}
			w.Header().Set("Content-Type", "application/binary")
			for _, rq := range b.requests {
				line := map[string]any{"custom_id": rq.CustomID, "result": map[string]any{"type": "succeeded", "message": map[string]any{
					"id": "msg_" + rq.CustomID, "type": "message", "role": "assistant", "model": rq.Params.Model,
					"content": []any{map[string]any{"type": "text", "text": "ok"}}, "stop_reason": "end_turn", "stop_sequence": nil,
					"usage": usageJSON(BatchUsage, true)}}}
				if b.canceled {
					line["result"] = map[string]any{"type": "canceled"}
				}
				data, _ := json.Marshal(line)
				_, _ = w.Write(append(data, '\n'))
			}
		default:
			writeErr(w, http.StatusNotFound, "not_found_error", "Not found")
		}
	}
}

func (b *fakeBatch) ended() bool { return b.canceled || b.polls >= batchEndsAfterPolls }

func (s *Server) batchObject(b *fakeBatch) map[string]any {
	status, ended := "in_progress", any(nil)
	counts := map[string]int{"processing": len(b.requests), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
	if b.ended() {
		status, ended = "ended", time.Now().UTC().Format(time.RFC3339)
		counts["processing"] = 0
		if b.canceled {
			counts["canceled"] = len(b.requests)
		} else {
			counts["succeeded"] = len(b.requests)
		}
	}
	return map[string]any{
		"id": b.id, "type": "message_batch", "processing_status": status, "request_counts": counts,
		"created_at": b.created.UTC().Format(time.RFC3339), "expires_at": b.created.Add(24 * time.Hour).UTC().Format(time.RFC3339),
		"ended_at": ended, "archived_at": nil, "cancel_initiated_at": nil,
		"results_url": "https://api.anthropic.com/v1/messages/batches/" + b.id + "/results",
	}
}
