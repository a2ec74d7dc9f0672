package meter

import (
	"encoding/json"
	"fmt"
)

// BatchResult is one line of a message batch's results file.
type BatchResult struct {
	CustomID string
	Type     string // succeeded, errored, canceled or expired
	Usage    Usage  // only for succeeded; Model from result.message.model
}

type wireBatchLine struct {
	CustomID *string `json:"custom_id"`
	Result   *struct {
		Type    *string `json:"type"`
		Message *struct {
			Model json.RawMessage `json:"model"`
			Usage json.RawMessage `json:"usage"`
		} `json:"message"`
	} `json:"result"`
}

// ParseBatchResultLine decodes one JSONL line of batch results. A line that
// is not a result object, has an unknown result type, or is a succeeded
// result without a usage object is an error wrapping ErrBatchLine: it cannot
// be priced, and guessing would misprice it silently.
func ParseBatchResultLine(line []byte) (BatchResult, error) {
	var w wireBatchLine
	if err := json.Unmarshal(line, &w); err != nil {
		return BatchResult{}, fmt.Errorf("%w: %w", ErrBatchLine, err)
	}
	if w.CustomID == nil || w.Result == nil || w.Result.Type == nil {
		return BatchResult{}, fmt.Errorf("%w: custom_id or result.type missing", ErrBatchLine)
	}
	r := BatchResult{CustomID: *w.CustomID, Type: *w.Result.Type}
	switch r.Type {
	case "errored", "canceled", "expired":
		return r, nil
	case "succeeded":
	default:
		return BatchResult{}, fmt.Errorf("%w: custom_id %q: unknown result type %q", ErrBatchLine, r.CustomID, r.Type)
	}
	m := w.Result.Message
	var u wireUsage
	if m != nil {
		u = parseUsage(m.Usage) // valid: json.Unmarshal checked the line
	}
	if !u.set {
		return BatchResult{}, fmt.Errorf("%w: custom_id %q: succeeded without message.usage", ErrBatchLine, r.CustomID)
	}
	r.Usage.apply(&u)
	r.Usage.Model = decodeText(m.Model)
	return r, nil
}
