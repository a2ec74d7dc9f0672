package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/jsonscan"
)

// countTokensFields are the members of a Messages body that decide its
// prompt size, and all count_tokens accepts of it.
var countTokensFields = []string{"model", "system", "tools", "tool_choice", "messages", "thinking", "mcp_servers"}

// countTokensBody is the count_tokens request for a Messages body: the
// members that make its prompt, as the client wrote them.
func countTokensBody(body []byte) ([]byte, bool) {
	out := append(make([]byte, 0, len(body)), '{')
	var v jsonscan.Validator
	ok := v.Members(body, func(key, val []byte) {
		var k string
		if json.Unmarshal(key, &k) != nil {
			return
		}
		for _, f := range countTokensFields {
			if k == f {
				if len(out) > 1 {
					out = append(out, ',')
				}
				out = append(append(append(out, key...), ':'), val...)
			}
		}
	})
	return append(out, '}'), ok
}

// countTokens asks the upstream's free count_tokens endpoint for the exact
// prompt size of c's request, within CountTokensTimeout. Any failure
// reports false, and admission keeps the byte-count bound.
func (h *Handler) countTokens(ctx context.Context, in http.Header, c *call) (int64, bool) {
	if h.o.CountTokensTimeout < 0 {
		return 0, false
	}
	body, ok := countTokensBody(c.body)
	if !ok {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(ctx, h.o.CountTokensTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.o.Upstream.JoinPath("v1/messages/count_tokens").String(), bytes.NewReader(body))
	if err != nil {
		return 0, false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", c.key)
	req.Header.Set("Anthropic-Version", "2023-06-01")
	if v := in.Get("Anthropic-Version"); v != "" {
		req.Header.Set("Anthropic-Version", v)
	}
	for _, b := range in.Values("Anthropic-Beta") {
		req.Header.Add("Anthropic-Beta", b)
	}
	n, err := h.doCountTokens(req)
	result := "ok"
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		result = "timeout"
	case err != nil:
		result = "error"
	}
	h.m.countTokens.WithLabelValues(result).Inc()
	if err != nil {
		h.log.Info("count_tokens failed; keeping the byte-count bound", append(c.logFields(), zap.Error(err))...)
		return 0, false
	}
	return n, true
}

func (h *Handler) doCountTokens(req *http.Request) (int64, error) {
	resp, err := h.o.Transport.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, errors.New("count_tokens answered " + resp.Status)
	}
	var r struct {
		InputTokens *int64 `json:"input_tokens"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return 0, err
	}
	if r.InputTokens == nil || *r.InputTokens <= 0 {
		return 0, errors.New("count_tokens answer without input_tokens")
	}
	return *r.InputTokens, nil
}
