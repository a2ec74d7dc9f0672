package policy

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testNow is the injected clock: keys created after it are in the future.
var testNow = time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC)

// testEnv holds the variables the good fixtures name.
var testEnv = map[string]string{
	"ANTHROPIC_KEY_PRODUCTION":     "sk-ant-prod-canary-0001",
	"ANTHROPIC_KEY_PRODUCTION_OLD": "sk-ant-prod-canary-0000",
	"ANTHROPIC_KEY_SANDBOX":        "sk-ant-sandbox-canary-0001",
	"SLACK_WEBHOOK_URL":            "https://hooks.slack.test/services/CANARY",
}

func opts(env map[string]string, resolve bool) LoadOptions {
	return LoadOptions{
		Getenv:         func(k string) string { return env[k] },
		ResolveSecrets: resolve,
		Now:            func() time.Time { return testNow },
	}
}

func mustLoad(t *testing.T, path string, o LoadOptions) *Policy {
	t.Helper()
	p, err := Load(path, o)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return p
}

// writeFiles creates files (relative name → contents) under a new temp dir
// and returns the dir.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readFile(name string) ([]byte, error) { return os.ReadFile(name) }

func writeAt(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeBench(path, body string) error { return os.WriteFile(path, []byte(body), 0o600) }
