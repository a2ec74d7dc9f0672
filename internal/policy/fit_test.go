package policy

import (
	"strings"
	"testing"
)

func TestFitDefaultsAndOverrides(t *testing.T) {
	dir := writeFiles(t, map[string]string{"p.yaml": `
fit_max_tokens: true
min_max_tokens: 2048
workspaces:
  w: {keys: [{name: k, env: K}]}
teams:
  t: {}
services:
  inherits: {team: t, workspace: w}
  strict: {team: t, workspace: w, fit_max_tokens: false}
  floor: {team: t, workspace: w, min_max_tokens: 512}
`})
	p := mustLoad(t, dir+"/p.yaml", opts(map[string]string{"K": "sk-ant-x"}, true))
	want := map[string]Fit{
		"inherits": {Enabled: true, MinMaxTokens: 2048},
		"strict":   {Enabled: false, MinMaxTokens: 2048},
		"floor":    {Enabled: true, MinMaxTokens: 512},
	}
	for name, w := range want {
		if got := p.Services[name].Fit; got != w {
			t.Errorf("%s: Fit = %+v, want %+v", name, got, w)
		}
	}
	if p.Fit != (Fit{Enabled: true, MinMaxTokens: 2048}) {
		t.Errorf("policy Fit = %+v", p.Fit)
	}
}

func TestFitOffByDefault(t *testing.T) {
	dir := writeFiles(t, map[string]string{"p.yaml": "teams:\n  t: {}\n"})
	p := mustLoad(t, dir+"/p.yaml", opts(nil, false))
	if p.Fit != (Fit{MinMaxTokens: 1024}) {
		t.Errorf("default Fit = %+v, want off with min_max_tokens 1024", p.Fit)
	}
}

func TestFitBadValues(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"fit_max_tokens: yes-please\n", "fit_max_tokens"},
		{"min_max_tokens: 0\n", "min_max_tokens: must be at least 1"},
		{"min_max_tokens: 1.5\n", "min_max_tokens"},
	} {
		dir := writeFiles(t, map[string]string{"p.yaml": tt.yaml})
		_, err := Load(dir+"/p.yaml", opts(nil, false))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want it to mention %q", tt.yaml, err, tt.want)
		}
	}
}
