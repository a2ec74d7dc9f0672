// Package fakeupstream is a stand-in for api.anthropic.com that speaks the
// real wire format: Messages as JSON and as SSE (message_start, content
// blocks, ping, cumulative message_delta usage, message_stop), count_tokens,
// models, and message batches with JSONL results. Tests, the reliability
// suite and the bench use it; it is the only fake in the project.
package fakeupstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Usage is what the fake reports for a response, in the API's field names.
type Usage struct {
	InputTokens   int64  `json:"input_tokens"`
	CacheCreation int64  `json:"cache_creation_input_tokens"`
	CacheRead     int64  `json:"cache_read_input_tokens"`
	Cache5m       int64  `json:"-"`
	Cache1h       int64  `json:"-"`
	OutputTokens  int64  `json:"output_tokens"`
	WebSearch     int64  `json:"-"`
	ServiceTier   string `json:"-"`
	InferenceGeo  string `json:"-"`
	Speed         string `json:"-"`
	// Iterations is usage.iterations, per sampling iteration with its
	// model (server-side loops, advisor calls, fallback attempts); the
	// counts above are then their sum, as the API reports them.
	Iterations []Iteration `json:"-"`
}

// Iteration is one entry of usage.iterations.
type Iteration struct {
	Type         string `json:"type"`
	Model        string `json:"model,omitempty"`
	InputTokens  int64  `json:"input_tokens"`
	OutputTokens int64  `json:"output_tokens"`
}

// Behavior is how the fake answers one Messages request.
type Behavior struct {
	Usage        Usage
	Text         []string      // content deltas; default a short greeting
	TTFB         time.Duration // before response headers
	EventSpacing time.Duration // between SSE events
	// CutAfterEvents > 0 closes the connection after that many SSE events
	// (an upstream cut mid-stream); ErrorAfterEvents sends an `error` event.
	CutAfterEvents   int
	ErrorAfterEvents int
	Status           int  // non-200: an Anthropic error envelope with this status
	Hang             bool // never answer (until the client gives up)
	// Thinking streams a thinking block (summarised, as the API shows it)
	// before the text; Redacted streams a redacted_thinking block.
	Thinking []string
	Redacted bool
	// UsageOverride replaces fields of the usage object as sent, for
	// usage the real API could not send (negative or non-numeric counts).
	UsageOverride map[string]any
	// Impossible sends Usage as given even where the real API could not
	// (more output than max_tokens).
	Impossible bool
}

// Server is the fake upstream. Configure it before serving; read its
// counters at any time.
type Server struct {
	// Key is the workspace key the fake accepts; anything else gets 401.
	Key string
	// Behave picks the answer to a Messages request; nil gives defaults.
	Behave func(r *http.Request, model string, stream bool) Behavior
	// Model overrides the model echoed in responses ("" echoes the request's).
	Model string
	// CountTokens answers count_tokens with the body's input_tokens after
	// delay; nil answers 42 at once. A negative count answers 500.
	CountTokens func(body []byte) (inputTokens int64, delay time.Duration)

	countCalls atomic.Int64

	messages   atomic.Int64
	mu         sync.Mutex
	seen       []Seen
	truth      map[string]int64 // ground truth usage totals by kind
	batches    map[string]*fakeBatch
	batchSeq   int
	files      map[string]*fakeFile
	fileSeq    int
	resultsGet atomic.Int64
	answered   []Answered
}

// Seen is what the fake recorded of one request.
type Seen struct {
	Method, Path, RawQuery, Host string
	Header                       http.Header
	// Trailer is what arrived after the body (nil when none was declared).
	Trailer http.Header
}

// New returns a fake that accepts key.
func New(key string) *Server {
	return &Server{Key: key, truth: map[string]int64{}, batches: map[string]*fakeBatch{}, files: map[string]*fakeFile{}}
}

// Requests returns every request seen so far.
func (s *Server) Requests() []Seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Seen(nil), s.seen...)
}

// Messages counts Messages requests that were answered with 200.
func (s *Server) Messages() int64 { return s.messages.Load() }

// CountTokensCalls counts count_tokens requests.
func (s *Server) CountTokensCalls() int64 { return s.countCalls.Load() }

func (s *Server) serveCountTokens(w http.ResponseWriter, r *http.Request) {
	s.countCalls.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var req struct {
		Model     string          `json:"model"`
		Messages  json.RawMessage `json:"messages"`
		MaxTokens *int64          `json:"max_tokens"`
	}
	switch {
	case json.Unmarshal(body, &req) != nil || req.Model == "" || len(req.Messages) == 0:
		writeErr(w, http.StatusBadRequest, "invalid_request_error", "model and messages are required")
		return
	case req.MaxTokens != nil:
		writeErr(w, http.StatusBadRequest, "invalid_request_error", "max_tokens: Extra inputs are not permitted")
		return
	}
	n, delay := int64(42), time.Duration(0)
	if s.CountTokens != nil {
		n, delay = s.CountTokens(body)
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if n < 0 {
		writeErr(w, http.StatusInternalServerError, "api_error", "fake upstream error")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"input_tokens": n})
}

// ResultsDownloads counts batch result downloads.
func (s *Server) ResultsDownloads() int64 { return s.resultsGet.Load() }

// Truth returns the usage totals the fake reported in complete responses.
func (s *Server) Truth() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.truth))
	for k, v := range s.truth {
		out[k] = v
	}
	return out
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var trailer http.Header
	if len(r.Trailer) > 0 {
		// Trailers arrive after the body: read it first so they are seen.
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		trailer = r.Trailer.Clone()
	}
	s.mu.Lock()
	s.seen = append(s.seen, Seen{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone(), Trailer: trailer})
	s.mu.Unlock()
	if r.Header.Get("X-Api-Key") != s.Key || len(r.Header.Values("X-Api-Key")) != 1 {
		writeErr(w, http.StatusUnauthorized, "authentication_error", "invalid x-api-key")
		return
	}
	w.Header().Set("request-id", fmt.Sprintf("req_fake_%d", time.Now().UnixNano()))
	w.Header().Set("anthropic-organization-id", "org-fake")
	switch p := r.URL.Path; {
	case p == "/v1/messages" && r.Method == http.MethodPost:
		s.serveMessages(w, r)
	case p == "/v1/messages/count_tokens" && r.Method == http.MethodPost:
		s.serveCountTokens(w, r)
	case p == "/v1/models":
		writeJSON(w, http.StatusOK, map[string]any{"data": []any{model("claude-sonnet-4-6"), model("claude-haiku-4-5")},
			"has_more": false, "first_id": "claude-sonnet-4-6", "last_id": "claude-haiku-4-5"})
	case strings.HasPrefix(p, "/v1/models/"):
		writeJSON(w, http.StatusOK, model(strings.TrimPrefix(p, "/v1/models/")))
	case strings.HasPrefix(p, "/v1/messages/batches"):
		s.serveBatches(w, r)
	case p == "/v1/files" || strings.HasPrefix(p, "/v1/files/"):
		s.serveFiles(w, r)
	default:
		writeErr(w, http.StatusNotFound, "not_found_error", "Not found")
	}
}

func model(id string) map[string]any {
	return map[string]any{"type": "model", "id": id, "display_name": id, "created_at": "2026-01-01T00:00:00Z"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeErr(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}, "request_id": "req_fake_err"})
}

func (s *Server) addTruth(u Usage, model string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer(at, model, u)
	s.truth["input"] += u.InputTokens
	s.truth["cache_creation"] += u.CacheCreation
	s.truth["cache_read"] += u.CacheRead
	s.truth["output"] += u.OutputTokens
	s.truth["web_search"] += u.WebSearch
	s.truth["responses"]++
}
