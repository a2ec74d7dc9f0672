package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// canary is a secret value no error, diff or print may ever contain.
const canary = "CANARY-7f3a9c"

func TestSecretsResolveFromEnvAndFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"p.yaml": `
workspaces:
  production:
    keys:
      - {name: from-env, env: KEY_ENV}
      - {name: from-file, file: secrets/key}
      - {name: crlf, file: secrets/crlf}
      - {name: two-newlines, file: secrets/two}
      - {name: absolute, file: ` + "ABS" + `}
webhooks:
  - {name: hook, url_file: secrets/hook}
`,
		"secrets/key":  "sk-ant-file-" + canary + "\n",
		"secrets/crlf": "sk-ant-crlf-" + canary + "\r\n",
		"secrets/two":  "sk-ant-two-" + canary + "\n\n",
		"secrets/hook": "https://hooks.slack.test/" + canary,
		"abs/key":      "sk-ant-abs-" + canary,
	})
	rewrite(t, filepath.Join(dir, "p.yaml"), "ABS", filepath.Join(dir, "abs/key"))
	p := mustLoad(t, filepath.Join(dir, "p.yaml"), opts(map[string]string{"KEY_ENV": "sk-ant-env-" + canary}, true))
	want := []string{
		"sk-ant-env-" + canary,
		"sk-ant-file-" + canary,
		"sk-ant-crlf-" + canary,
		"sk-ant-two-" + canary + "\n", // only one trailing newline is trimmed
		"sk-ant-abs-" + canary,
	}
	keys := p.Workspaces["production"].Keys
	if len(keys) != len(want) {
		t.Fatalf("got %d keys, want %d", len(keys), len(want))
	}
	for i, k := range keys {
		if string(k.Secret) != want[i] {
			t.Errorf("key %s = %q, want %q", k.Name, string(k.Secret), want[i])
		}
	}
	if got := string(p.Webhooks[0].URL); got != "https://hooks.slack.test/"+canary {
		t.Errorf("webhook URL = %q", got)
	}
	// Printing the compiled policy in any usual way shows no secret.
	printed := fmt.Sprintf("%v %+v %#v %v %+v", *p.Workspaces["production"], keys, keys, p.Webhooks, p.Webhooks)
	if strings.Contains(printed, canary) {
		t.Errorf("secret printed: %s", printed)
	}
}

func rewrite(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, path, strings.ReplaceAll(string(b), old, new))
}

// TestSecretProblems checks the message for each way a secret can be
// missing, and that no secret value leaks into any of them.
func TestSecretProblems(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"p.yaml": `workspaces:
  production:
    keys:
      - {name: unset, env: KEY_UNSET}
      - {name: empty-env, env: KEY_EMPTY}
      - {name: no-file, file: secrets/none}
      - {name: empty-file, file: secrets/empty}
      - {name: newline-only, file: secrets/newline}
      - {name: denied, file: secrets/denied}
      - {name: good, env: KEY_GOOD}
webhooks:
  - {name: not-a-url, url_env: HOOK_NOT_URL}
  - {name: file-not-url, url_file: secrets/hook}
`,
		"secrets/empty":   "",
		"secrets/newline": "\n",
		"secrets/hook":    "sk-ant-" + canary + "\n",
	})
	env := map[string]string{"KEY_EMPTY": "", "KEY_GOOD": "sk-ant-" + canary, "HOOK_NOT_URL": "hooks.slack " + canary}
	o := opts(env, true)
	o.ReadFile = func(name string) ([]byte, error) {
		if filepath.Base(name) == "denied" {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
		}
		return readFile(name)
	}
	_, err := Load(filepath.Join(dir, "p.yaml"), o)
	f := filepath.Join(dir, "p.yaml")
	s := filepath.Join(dir, "secrets")
	want := strings.Join([]string{
		f + ":4: workspaces.production.keys[0].env: environment variable KEY_UNSET is not set",
		f + ":5: workspaces.production.keys[1].env: environment variable KEY_EMPTY is not set",
		f + ":6: workspaces.production.keys[2].file: secret file " + s + "/none does not exist",
		f + ":7: workspaces.production.keys[3].file: secret file " + s + "/empty is empty",
		f + ":8: workspaces.production.keys[4].file: secret file " + s + "/newline is empty",
		f + ":9: workspaces.production.keys[5].file: cannot read secret file: open " + s + "/denied: permission denied",
		f + ":12: webhooks[0].url_env: environment variable HOOK_NOT_URL does not hold an http(s) URL (value not shown)",
		f + ":13: webhooks[1].url_file: file " + s + "/hook does not hold an http(s) URL (value not shown)",
	}, "\n")
	if err == nil || err.Error() != want {
		t.Fatalf("error text:\n%v\nwant:\n%s", err, want)
	}
	if strings.Contains(err.Error(), canary) {
		t.Errorf("secret in error: %v", err)
	}
}

// TestNoSecretInAnyError loads every bad fixture with every environment
// variable and secret file set to a canary, and also the fixture where
// secrets were pasted where their names belong.
func TestNoSecretInAnyError(t *testing.T) {
	fixtures, _ := filepath.Glob("testdata/bad/*.yaml")
	folders, _ := filepath.Glob("testdata/bad-folders/*")
	if len(fixtures) < 20 || len(folders) < 5 {
		t.Fatalf("found only %d fixtures and %d folders", len(fixtures), len(folders))
	}
	o := LoadOptions{
		Getenv:         func(string) string { return "sk-ant-" + canary },
		ReadFile:       func(string) ([]byte, error) { return []byte("sk-ant-" + canary), nil },
		ResolveSecrets: true,
		Now:            opts(nil, false).Now,
	}
	for _, f := range append(fixtures, folders...) {
		_, err := Load(f, o)
		if err == nil {
			t.Errorf("%s: loaded", f)
			continue
		}
		if strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), "CANARY") {
			t.Errorf("%s: secret in error:\n%v", f, err)
		}
	}
}

// TestResolveSecretsFalse is check-config and review mode: references are
// checked, no variable or file is read, and secrets stay empty.
func TestResolveSecretsFalse(t *testing.T) {
	reads := 0
	o := LoadOptions{
		Getenv:   func(string) string { reads++; return "" },
		ReadFile: func(string) ([]byte, error) { reads++; return nil, errors.New("must not be read") },
		Now:      opts(nil, false).Now,
	}
	p, err := Load("testdata/good.yaml", o)
	if err != nil {
		t.Fatal(err)
	}
	if reads != 0 {
		t.Errorf("%d reads of secrets", reads)
	}
	for _, ws := range p.Workspaces {
		for _, k := range ws.Keys {
			if k.Secret != "" {
				t.Errorf("key %s has a secret", k.Name)
			}
		}
	}
	// The same policy with secrets resolved fails only for want of them.
	o.ResolveSecrets = true
	_, err = Load("testdata/good.yaml", o)
	want := strings.Join([]string{
		"testdata/good.yaml:10: workspaces.production.keys[0].env: environment variable ANTHROPIC_KEY_PRODUCTION is not set",
		"testdata/good.yaml:13: workspaces.production.keys[1].env: environment variable ANTHROPIC_KEY_PRODUCTION_OLD is not set",
		"testdata/good.yaml:20: workspaces.staging.keys[0].file: cannot read secret file: must not be read",
		"testdata/good.yaml:60: webhooks[0].url_env: environment variable SLACK_WEBHOOK_URL is not set",
		"testdata/good.yaml:61: webhooks[1].url_file: cannot read secret file: must not be read",
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("error text:\n%v\nwant:\n%s", err, want)
	}
	// Reference mistakes are still caught without resolving.
	_, err = Load("testdata/bad/keys.yaml", LoadOptions{Now: o.Now})
	if err == nil || !strings.Contains(err.Error(), "set exactly one of env and file, not both") {
		t.Errorf("keys.yaml: %v", err)
	}
}
