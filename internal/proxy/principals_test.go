package proxy

import (
	"net/http"
	"strings"
	"testing"
)

func TestParseClaudeCodeUserID(t *testing.T) {
	tests := []struct {
		name, in      string
		user, session string
	}{
		{"json as claude-code 2.1.337 sends it with an API key",
			`{"device_id":"143d0764dd87daaada7cdff7611f30edbb9fb7a339d408529f0b7ea751a70340","account_uuid":"","session_id":"566802aa-d9b6-40ee-8aed-6b6162126600"}`,
			"143d0764dd87daaada7cdff7611f30edbb9fb7a339d408529f0b7ea751a70340", "566802aa-d9b6-40ee-8aed-6b6162126600"},
		{"json signed in",
			`{"device_id":"d1","account_uuid":"0c1b7a58-5c1e-4a47-9a3b-1f5b0e4c6d2a","session_id":"s1"}`,
			"0c1b7a58-5c1e-4a47-9a3b-1f5b0e4c6d2a", "s1"},
		{"json with CLAUDE_CODE_EXTRA_METADATA user",
			`{"user":"alice@example.com","device_id":"d1","account_uuid":"acc","session_id":"s1"}`,
			"alice@example.com", "s1"},
		{"json user that is not a string", `{"user":7,"device_id":"d1","account_uuid":"","session_id":"s1"}`, "d1", "s1"},
		{"legacy string signed in",
			"user_9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08_account_0c1b7a58-5c1e-4a47-9a3b-1f5b0e4c6d2a_session_566802aa-d9b6-40ee-8aed-6b6162126600",
			"0c1b7a58-5c1e-4a47-9a3b-1f5b0e4c6d2a", "566802aa-d9b6-40ee-8aed-6b6162126600"},
		{"legacy string with an API key",
			"user_9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08_account__session_566802aa-d9b6-40ee-8aed-6b6162126600",
			"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "566802aa-d9b6-40ee-8aed-6b6162126600"},
		{"not claude code", "customer-42", "", ""},
		{"broken json", `{"device_id":`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseClaudeCodeUserID(tt.in)
			if got.user != tt.user || got.session != tt.session {
				t.Fatalf("got user %q session %q, want %q %q", got.user, got.session, tt.user, tt.session)
			}
		})
	}
}

func TestMetadataUserID(t *testing.T) {
	tests := []struct {
		body, want string
		bad        bool
	}{
		{`{"model":"m","metadata":{"user_id":"u1"}}`, "u1", false},
		{`{"model":"m"}`, "", false},
		{`{"metadata":null}`, "", false},
		{`{"metadata":{"user_id":null}}`, "", false},
		// encoding/json's rules: the last repeated key wins, keys match
		// case-insensitively.
		{`{"metadata":{"user_id":"a"},"Metadata":{"user_id":"b"}}`, "b", false},
		{`{"metadata":{"user_id":7}}`, "", true},
	}
	for _, tt := range tests {
		got, err := metadataUserID([]byte(tt.body))
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q (error %v)", tt.body, got, err, tt.want, tt.bad)
		}
	}
}

func TestOneHeaderRefusesDisagreement(t *testing.T) {
	h := http.Header{}
	h.Add("X-Customer-Id", "a")
	h.Add("X-Customer-Id", "b")
	if _, err := oneHeader(h, "x-customer-id"); err == nil || !strings.Contains(err.Error(), "repeated with different values") {
		t.Fatalf("two different values: %v", err)
	}
	h.Set("X-Customer-Id", " a ")
	h.Add("X-Customer-Id", "a")
	if v, err := oneHeader(h, "x-customer-id"); err != nil || v != "a" {
		t.Fatalf("the same value twice: %q %v", v, err)
	}
}

func TestPrintable(t *testing.T) {
	for s, want := range map[string]bool{"alice@example.com": true, "Zoë": true, "a\nb": false, "a\x00": false, "\xff": false, "a\u0085b": false} {
		if printable(s) != want {
			t.Errorf("printable(%q) = %v", s, !want)
		}
	}
}
