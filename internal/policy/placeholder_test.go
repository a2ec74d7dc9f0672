package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlaceholdersFailLoudly(t *testing.T) {
	for _, v := range []string{"sk-ant-...", "REPLACE_ME", "replace-with-a-key", "<your key>", "changeme", "CHANGE_ME", "sk-ant-api03-…"} {
		if !isPlaceholder(v) {
			t.Errorf("%q is not recognised as a placeholder", v)
		}
	}
	for _, v := range []string{"sk-ant-api03-Zx9Q2wYb7", "https://hooks.slack.com/services/T0/B0/abc", "0123abcd"} {
		if isPlaceholder(v) {
			t.Errorf("%q taken for a placeholder", v)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "clade.yaml")
	src := `
workspaces:
  production:
    keys: [{name: k, env: KEY}]
services:
  svc:
    workspace: production
    tokens: [{sha256: "REPLACE_ME_with_the_sha256_from_clade-gateway_new-token"}]
admin:
  tokens: [{sha256: "REPLACE_ME_with_the_sha256_from_clade-gateway_new-token"}]
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, LoadOptions{ResolveSecrets: true, Getenv: func(string) string { return "sk-ant-..." }})
	if err == nil {
		t.Fatal("a policy with placeholders loaded")
	}
	msg := err.Error()
	for _, want := range []string{"services.svc.tokens[0].sha256: is a placeholder", "admin.tokens[0].sha256: is a placeholder",
		"clade-gateway new-token", "environment variable KEY holds a placeholder"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "sk-ant-...") {
		t.Errorf("error shows the value:\n%s", msg)
	}
}
