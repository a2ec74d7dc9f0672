package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

type envelope struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

func TestRefusals(t *testing.T) {
	f, up := startUpstream(t)
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("50"))))
	good := `{"model":"claude-sonnet-4-6","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		body       string
		wantStatus int
		wantType   string
		wantMsg    string
	}{
		{"no token", "POST", "/v1/messages", nil, good, 401, "authentication_error", "no credentials"},
		{"unknown token same length", "POST", "/v1/messages", map[string]string{"x-api-key": strings.Repeat("x", len(testutil.CanaryToken))}, good, 401, "authentication_error", "not a service token of this gateway"},
		{"unknown token other length", "POST", "/v1/messages", map[string]string{"x-api-key": "short"}, good, 401, "authentication_error", "not a service token of this gateway"},
		{"two different credentials", "POST", "/v1/messages", map[string]string{"x-api-key": testutil.CanaryToken, "Authorization": "Bearer " + testutil.OtherToken}, good, 401, "authentication_error", "service tokens of different services"},
		{"legacy complete", "POST", "/v1/complete", nil, `{}`, 403, "permission_error", "Text Completions"},
		{"admin API", "GET", "/v1/organizations/usage_report/messages", nil, "", 403, "permission_error", "Admin API"},
		{"managed agents", "POST", "/v1/sessions", nil, `{}`, 403, "permission_error", "managed-agent"},
		{"unknown path", "GET", "/v2/whatever", nil, "", 403, "permission_error", "not served"},
		{"model not allowed", "POST", "/v1/messages", nil, `{"model":"claude-opus-4-6","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request_error", "models allowlist"},
		{"malformed JSON", "POST", "/v1/messages", nil, `{"model":`, 400, "invalid_request_error", "not valid JSON"},
		{"missing model", "POST", "/v1/messages", nil, `{"max_tokens":16,"messages":[]}`, 400, "invalid_request_error", "model: field required"},
		{"missing max_tokens", "POST", "/v1/messages", nil, `{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request_error", "max_tokens: field required"},
		{"upgrade", "GET", "/v1/models", map[string]string{"Upgrade": "h2c", "Connection": "Upgrade"}, "", 400, "invalid_request_error", "upgrades"},
		{"too large", "POST", "/v1/messages", nil, `{"model":"claude-sonnet-4-6","max_tokens":16,"messages":[{"role":"user","content":"` + strings.Repeat("a", 33<<20) + `"}]}`, 413, "request_too_large", "exceeds"},
	}
	before := f.Messages()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, gw.URL+tt.path, bytes.NewBufferString(tt.body))
			req.Header.Set("anthropic-version", "2023-06-01")
			req.Header.Set("content-type", "application/json")
			if tt.header["x-api-key"] == "" && tt.header["Authorization"] == "" && tt.name != "no token" {
				req.Header.Set("x-api-key", testutil.CanaryToken)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var env envelope
			if err := json.Unmarshal(raw, &env); err != nil {
				t.Fatalf("body is not an error envelope: %s", raw)
			}
			if resp.StatusCode != tt.wantStatus || env.Type != "error" || env.Error.Type != tt.wantType || !strings.Contains(env.Error.Message, tt.wantMsg) {
				t.Errorf("got %d %s %q, want %d %s containing %q", resp.StatusCode, env.Error.Type, env.Error.Message, tt.wantStatus, tt.wantType, tt.wantMsg)
			}
			// None of these can succeed on a retry: the SDKs must stop at once.
			if got := resp.Header.Get("x-should-retry"); got != "false" {
				t.Errorf("x-should-retry = %q, want false", got)
			}
			if env.RequestID == "" || resp.Header.Get("request-id") != env.RequestID {
				t.Errorf("request id %q, header %q", env.RequestID, resp.Header.Get("request-id"))
			}
			assertNoLeak(t, "error body", string(raw))
		})
	}
	if n := f.Messages() - before; n != 0 {
		t.Errorf("%d refused requests reached the upstream", n)
	}
	assertNoLeak(t, "logs", gw.Logs.String())
}

func TestHeaderTricksCannotStripTheKey(t *testing.T) {
	f, up := startUpstream(t)
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("50"))))
	body := `{"model":"claude-sonnet-4-6","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
	req, _ := http.NewRequest("POST", gw.URL+"/v1/messages", strings.NewReader(body))
	req.Header.Set("x-api-key", testutil.CanaryToken)
	req.Header.Set("Connection", "x-api-key, X-Forwarded-For")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("Anthropic-Workspace-Id", "wrkspc_other")
	req.Host = "evil.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	seen := f.Requests()
	last := seen[len(seen)-1]
	if last.Header.Get("X-Api-Key") != testutil.CanaryKey {
		t.Error("the workspace key did not reach the upstream")
	}
	if last.Host != strings.TrimPrefix(up.URL, "http://") {
		t.Errorf("upstream Host %q", last.Host)
	}
	if got := last.Header.Get("X-Forwarded-For"); strings.Contains(got, "6.6.6.6") {
		t.Errorf("spoofed X-Forwarded-For forwarded: %q", got)
	}
	if last.Header.Get("X-Forwarded-Host") == "evil.example" || last.Header.Get("Anthropic-Workspace-Id") != "" {
		t.Error("client forwarding or workspace headers reached the upstream")
	}
}
