package app

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckConfigReconcile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "clade.yaml")
	pol := `
workspaces:
  production:
    anthropic_id: wrkspc_01Prod
    keys:
      - {name: main, env: K1, anthropic_id: apikey_01Main}
      - {name: next, env: K2}
  lab:
    keys: [{name: lab, env: K3}]
reconcile:
  admin_key: {env: ADMIN}
`
	if err := os.WriteFile(p, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	// The admin key is not needed to validate, nor by replicas that do
	// not reconcile.
	if err := Run(context.Background(), []string{"check-config", "--policy-only", p}, func(string) string { return "" }, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"reconcile: on (admin key from environment variable ADMIN), 1 workspaces compared",
		"reconcile: key production/next has no anthropic_id",
		"reconcile: workspace lab has no anthropic_id",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReconcileCommandErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "clade.yaml")
	if err := os.WriteFile(p, []byte("workspaces:\n  w:\n    keys: [{name: k, env: K}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		return map[string]string{"CLADE_CONFIG": p, "CLADE_DATA_DIR": t.TempDir()}[k]
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "xml"}, "usage"},
		{[]string{"--from", "2026-13-01"}, "not a date"},
		{[]string{"--from", "2026-12-05", "--to", "2026-12-01"}, "no reconcile.admin_key"},
		{nil, "no reconcile.admin_key"},
	} {
		var out bytes.Buffer
		err := Run(context.Background(), append([]string{"reconcile"}, c.args...), getenv, nil, &out, &out)
		var exit *ExitError
		if err == nil || errors.As(err, &exit) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("reconcile %v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}
