package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func digest(t *testing.T, h string) [sha256.Size]byte {
	t.Helper()
	var d [sha256.Size]byte
	if n, err := hex.Decode(d[:], []byte(h)); err != nil || n != sha256.Size {
		t.Fatalf("bad hex digest %q: %v", h, err)
	}
	return d
}

func TestWorkspaceEnvironment(t *testing.T) {
	const base = `
workspaces:
  w:
    keys: [{name: w-key, env: K}]
%s
teams: {t: {}}
services: {s: {team: t, workspace: w}}
`
	for _, tt := range []struct {
		line string
		want Environment
		prob string
	}{
		{line: "", want: ""},
		{line: "    environment: production", want: EnvProduction},
		{line: "    environment: staging", want: EnvStaging},
		{line: "    environment: development", want: EnvDevelopment},
		{line: "    environment: prod", prob: `workspaces.w.environment: must be production, staging or development, not "prod"`},
		{line: "    environment: [production]", prob: "workspaces.w.environment: must be a string"},
	} {
		dir := writeFiles(t, map[string]string{"p.yaml": strings.Replace(base, "%s", tt.line, 1)})
		p, err := Load(dir+"/p.yaml", opts(nil, false))
		if tt.prob != "" {
			if err == nil || !strings.Contains(err.Error(), tt.prob) {
				t.Errorf("%q: err = %v, want %q", tt.line, err, tt.prob)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.line, err)
		}
		if got := p.Workspaces["w"].Environment; got != tt.want {
			t.Errorf("%q: Environment = %q, want %q", tt.line, got, tt.want)
		}
	}
}

func TestDiffEnvironment(t *testing.T) {
	const p = `
workspaces:
  a: {keys: [{name: a-key, env: K}]%s}
  b: {keys: [{name: b-key, env: K2}], environment: staging}
%s`
	dir := writeFiles(t, map[string]string{
		"old.yaml": strings.Replace(strings.Replace(p, "%s", "", 1), "%s", "", 1),
		"new.yaml": strings.Replace(strings.Replace(strings.Replace(p, "%s", ", environment: production", 1), "staging", "development", 1), "%s",
			"  c: {keys: [{name: c-key, env: K3}], environment: development}", 1),
	})
	got := Diff(mustLoad(t, dir+"/old.yaml", opts(nil, false)), mustLoad(t, dir+"/new.yaml", opts(nil, false)))
	want := []string{
		`workspace "a": environment changed from none to production`,
		`workspace "b": environment changed from staging to development`,
		`workspace "c" added`,
		`workspace "c": environment development`,
		`workspace "c": key "c-key" added`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
