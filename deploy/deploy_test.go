// Package deploy_test checks the operations files under deploy/: that every
// YAML and JSON file parses, that the alert rules pass promtool and are
// unit-tested both ways, that the dashboard's queries parse, and that every
// metric and CLADE_* variable they name exists in the Go source.
package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// walk lists the files under deploy/ (the test's working directory) whose
// names satisfy keep, in lexical order.
func walk(t *testing.T, keep func(path string) bool) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && keep(p) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk deploy/: %v", err)
	}
	return out
}

func hasExt(exts ...string) func(string) bool {
	return func(p string) bool {
		for _, e := range exts {
			if strings.HasSuffix(p, e) {
				return true
			}
		}
		return false
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeYAML decodes every document of a YAML stream (Kubernetes files hold
// several). yaml.v3 also rejects duplicate keys, which other parsers keep.
func decodeYAML(b []byte) ([]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, v)
	}
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

func TestEveryYAMLAndJSONFileParses(t *testing.T) {
	files := walk(t, hasExt(".yaml", ".yml", ".json"))
	if len(files) < 20 {
		t.Fatalf("found only %d YAML/JSON files under deploy/: %v", len(files), files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			b := read(t, f)
			if strings.HasSuffix(f, ".json") {
				if _, err := decodeJSON(b); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				return
			}
			docs, err := decodeYAML(b)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(docs) == 0 {
				t.Fatalf("%s has no YAML document", f)
			}
		})
	}
}

// promtool returns the promtool binary, failing the test when it is missing
// unless CLADE_TEST_NO_PROMTOOL=1 says this machine cannot have it.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CLADE_TEST_NO_PROMTOOL") == "1" {
			t.Skip("promtool not on PATH and CLADE_TEST_NO_PROMTOOL=1")
		}
		t.Fatal("promtool not on PATH: install it (Debian: apt-get install prometheus) or set CLADE_TEST_NO_PROMTOOL=1")
	}
	return p
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func ruleTestFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("prometheus/*_test.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule test files in deploy/prometheus (%v)", err)
	}
	return files
}

func TestPromtoolCheckRules(t *testing.T) {
	runPromtool(t, "check", "rules", "prometheus/alerts.yml")
}

func TestPromtoolTestRules(t *testing.T) {
	runPromtool(t, append([]string{"test", "rules"}, ruleTestFiles(t)...)...)
}

func TestPromtoolCheckConfig(t *testing.T) {
	runPromtool(t, "check", "config", "prometheus/prometheus.yml")
}

// Grafana variables, replaced by values PromQL accepts.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
	"$team", ".*", "$service", ".*", "$model", ".*",
)

// TestDashboardQueriesParse feeds every dashboard query to promtool as a
// recording rule, so a typo fails here and not on a blank panel.
func TestDashboardQueriesParse(t *testing.T) {
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	for _, f := range walk(t, hasExt(".json")) {
		v, err := decodeJSON(read(t, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, e := range exprs(v) {
			if strings.Contains(grafanaVars.Replace(e), "$") {
				t.Errorf("%s: query uses an unknown variable: %s", f, e)
			}
			rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", len(rules)), Expr: grafanaVars.Replace(e)})
		}
	}
	if len(rules) < 20 {
		t.Fatalf("found only %d dashboard queries", len(rules))
	}
	b, err := json.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "dashboard-rules.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, "check", "rules", p)
}

// exprs collects every "expr" string in a decoded JSON document.
func exprs(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		if e, ok := x["expr"].(string); ok {
			out = append(out, e)
		}
		for _, c := range x {
			out = append(out, exprs(c)...)
		}
	case []any:
		for _, c := range x {
			out = append(out, exprs(c)...)
		}
	}
	return out
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type ruleTestFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func decodeInto(t *testing.T, path string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(read(t, path), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestEveryAlertTestedBothWays requires, for every alert, a unit test where
// it fires and one where it stays silent, plus a severity and the two
// annotations the on-call reads.
func TestEveryAlertTestedBothWays(t *testing.T) {
	var rf ruleFile
	decodeInto(t, "prometheus/alerts.yml", &rf)
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if alerts[r.Alert] {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			alerts[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("alert %s: severity %q, want critical, warning or info", r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if r.Annotations[a] == "" {
					t.Errorf("alert %s has no %s annotation", r.Alert, a)
				}
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatal("no alerts in prometheus/alerts.yml")
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, f := range ruleTestFiles(t) {
		var tf ruleTestFile
		decodeInto(t, f, &tf)
		if !contains(tf.RuleFiles, "alerts.yml") {
			t.Errorf("%s does not load alerts.yml (rule_files: %v)", f, tf.RuleFiles)
		}
		for _, tg := range tf.Tests {
			for _, at := range tg.AlertRuleTest {
				if !alerts[at.Alertname] {
					t.Errorf("%s (%s): tests unknown alert %q", f, tg.Name, at.Alertname)
				}
				if len(at.ExpAlerts) > 0 {
					fires[at.Alertname] = true
				} else {
					silent[at.Alertname] = true
				}
			}
		}
	}
	for _, a := range sortedKeysOf(alerts) {
		if !fires[a] {
			t.Errorf("alert %s has no unit test where it fires", a)
		}
		if !silent[a] {
			t.Errorf("alert %s has no unit test where it stays silent", a)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
