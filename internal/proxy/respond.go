package proxy

import (
	"encoding/json"
	"net/http"
	"strconv"
)

type errorEnvelope struct {
	Type      string    `json:"type"`
	Error     errorBody `json:"error"`
	RequestID string    `json:"request_id"`
}

type errorBody struct {
	Type    string        `json:"type"`
	Message string        `json:"message"`
	Details *errorDetails `json:"details,omitempty"`
}

type errorDetails struct {
	ErrorCode string `json:"error_code"`
	*budgetDetails
}

// budgetDetails say, in a budget refusal, what the request needed and
// what is left: exact decimal USD (JSON numbers), and the largest
// max_tokens whose worst case fits what is left (0: none does).
type budgetDetails struct {
	NeededUSD        json.Number `json:"needed_usd"`
	RemainingUSD     json.Number `json:"remaining_usd"`
	MaxTokensThatFit *int64      `json:"max_tokens_that_fit,omitempty"`
}

// writeError answers with Anthropic's error envelope so every SDK parses it
// as it would an API error.
func writeError(w http.ResponseWriter, requestID string, e *apiError) {
	env := errorEnvelope{Type: "error", Error: errorBody{Type: e.Type, Message: e.Msg}, RequestID: requestID}
	if e.Code != "" {
		env.Error.Details = &errorDetails{ErrorCode: e.Code, budgetDetails: e.Budget}
	}
	body, _ := json.Marshal(env) // plain strings only: cannot fail
	h := w.Header()
	for k, vs := range e.Header {
		h[k] = vs
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("request-id", requestID)
	if (e.NoRetry || final(e.Status)) && h.Get("x-should-retry") == "" {
		h.Set("x-should-retry", "false")
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// final reports whether a refusal with this status is one a retry of the
// same request cannot change. The SDKs and Claude Code read x-should-retry
// before the status, so saying so stops them at once.
func final(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestEntityTooLarge:
		return true
	}
	return false
}
