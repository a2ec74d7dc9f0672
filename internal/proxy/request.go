package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// messageRequest is the part of a Messages request body that admission
// needs. Everything else is forwarded untouched as the client sent it.
type messageRequest struct {
	Model        string          `json:"model"`
	MaxTokens    *int64          `json:"max_tokens"`
	Stream       bool            `json:"stream"`
	InferenceGeo string          `json:"inference_geo"`
	Speed        string          `json:"speed"`
	Tools        []toolDecl      `json:"tools"`
	MCPServers   json.RawMessage `json:"mcp_servers"`
	Messages     json.RawMessage `json:"messages"`
	Thinking     *thinkingDecl   `json:"thinking"`
}

type thinkingDecl struct {
	Type         string `json:"type"`
	BudgetTokens *int64 `json:"budget_tokens"`
}

type toolDecl struct {
	Type string `json:"type"`
}

// parsedRequest is what admission knows about a Messages request.
type parsedRequest struct {
	Model       string
	MaxTokens   int64
	Stream      bool
	GeoUS       bool
	Fast        bool
	ServerTools bool // may grow input server-side: server tools, MCP, file references
	// Bounds is what else the body says about its cost: content it only
	// points at, other models, tool types (bounds.go).
	Bounds requestBounds
	// Cache is the dearest cache write the request can cause: none
	// without cache_control, 1-hour only when some ttl is "1h".
	Cache pricing.PromptCache
	// ThinkingBudget is thinking.budget_tokens when thinking is enabled
	// with a budget, else 0.
	ThinkingBudget int64
}

// Strings parseMessages watches for (admissionWatch), by bit.
const (
	watchFileRef = 1<<0 | 1<<1 // "file_id", "container_upload"
	watchCache   = 1 << 2      // "cache_control"
	watchHour    = 1 << 3      // "1h"
)

var admissionWatch = []string{"file_id", "container_upload", "cache_control", "1h"}

// parseMessages validates a Messages body before anything is reserved, so a
// malformed request costs nothing and gets a clear 400.
func parseMessages(body []byte) (parsedRequest, error) {
	var r messageRequest
	// A file reference is billed at its full token count, which its few
	// bytes in the request do not bound.
	// Any string "cache_control" (key or value) or "1h" counts, wherever it
	// is: seeing more than the API would only raises the bound.
	scan, hits, walked, err := walkMessages(body, &r, admissionWatch)
	if !walked {
		hits, err = decodeWatched(body, &r, admissionWatch)
	}
	fileRef := hits&watchFileRef != 0
	if err != nil {
		return parsedRequest{}, errBadRequest("request body is not valid JSON: "+jsonErrText(err), err)
	}
	if r.Model == "" {
		return parsedRequest{}, errBadRequest("model: field required", nil)
	}
	if r.MaxTokens == nil {
		return parsedRequest{}, errBadRequest("max_tokens: field required", nil)
	}
	if *r.MaxTokens < 1 {
		return parsedRequest{}, errBadRequest("max_tokens: must be at least 1", nil)
	}
	if len(r.Messages) == 0 || bytes.Equal(r.Messages, []byte("null")) {
		return parsedRequest{}, errBadRequest("messages: field required", nil)
	}
	// The body is a valid object now: hold it to one meaning for every
	// parser (strict.go) and read what bounds its cost (bounds.go).
	if !walked {
		if scan, err = checkDuplicates(body); err != nil {
			return parsedRequest{}, err
		}
	}
	bounds, err := parseBounds(scan, *r.MaxTokens)
	if err != nil {
		return parsedRequest{}, err
	}
	p := parsedRequest{
		Model:     r.Model,
		MaxTokens: *r.MaxTokens,
		Stream:    r.Stream,
		GeoUS:     r.InferenceGeo == "us",
		Fast:      r.Speed == "fast",
		Bounds:    bounds,
	}
	switch {
	case hits&watchCache == 0:
		p.Cache = pricing.CacheNone
	case hits&watchHour == 0:
		p.Cache = pricing.Cache5m
	}
	if r.Thinking != nil && r.Thinking.Type == "enabled" && r.Thinking.BudgetTokens != nil {
		p.ThinkingBudget = *r.Thinking.BudgetTokens
	}
	for _, t := range r.Tools {
		if isServerTool(t.Type) {
			p.ServerTools = true
		}
	}
	if len(r.MCPServers) > 0 && !bytes.Equal(r.MCPServers, []byte("null")) {
		p.ServerTools = true
	}
	if fileRef || bounds.ServerSide {
		p.ServerTools = true
	}
	return p, nil
}

// parseModel reads just the model of a count_tokens body, for the allowlist.
func parseModel(body []byte) (string, error) {
	var r struct {
		Model string `json:"model"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", errBadRequest("request body is not valid JSON: "+jsonErrText(err), err)
	}
	if r.Model == "" {
		return "", errBadRequest("model: field required", nil)
	}
	return r.Model, nil
}

func isServerTool(typ string) bool {
	for _, p := range []string{"web_search", "web_fetch", "code_execution", "tool_search", "memory"} {
		if strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}

func jsonErrText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %s: expected %s", te.Field, te.Type)
	}
	return err.Error()
}
