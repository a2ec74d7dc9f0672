package deploy_test

import (
	"io/fs"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// goSource concatenates the non-test Go files under ../cmd and ../internal:
// the only place a metric or a CLADE_* variable can really be defined.
func goSource(t *testing.T) string {
	t.Helper()
	var sb strings.Builder
	for _, root := range []string{"../cmd", "../internal"} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			sb.Write(read(t, p))
			sb.WriteByte('\n')
			return nil
		})
		if err != nil {
			t.Fatalf("read Go source: %v", err)
		}
	}
	return sb.String()
}

var metricRE = regexp.MustCompile(`\bclade_gateway_[a-z0-9_]+`)

// TestMetricNamesDefinedInGo: every clade_gateway_* name the alerts, their
// tests and the dashboards use must appear, as a whole quoted string
// literal, in some non-test Go file. Histogram series (_bucket, _sum,
// _count) are matched by their base name.
func TestMetricNamesDefinedInGo(t *testing.T) {
	files := append([]string{"prometheus/alerts.yml"}, ruleTestFiles(t)...)
	files = append(files, walk(t, func(p string) bool {
		return strings.HasPrefix(p, "grafana/dashboards/") && strings.HasSuffix(p, ".json")
	})...)
	used := map[string][]string{} // name -> files
	for _, f := range files {
		for _, m := range metricRE.FindAllString(string(read(t, f)), -1) {
			if !contains(used[m], f) {
				used[m] = append(used[m], f)
			}
		}
	}
	if len(used) < 15 {
		t.Fatalf("found only %d metric names in %v", len(used), files)
	}
	src := goSource(t)
	for _, name := range sortedKeysOf(used) {
		if !definedIn(src, name) {
			t.Errorf("%s (used in %s) is not a string literal in any non-test .go file under cmd/ or internal/",
				name, strings.Join(used[name], ", "))
		}
	}
}

func definedIn(src, name string) bool {
	if strings.Contains(src, `"`+name+`"`) {
		return true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok && strings.Contains(src, `"`+base+`"`) {
			return true
		}
	}
	return false
}

func sortedKeysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var envRE = regexp.MustCompile(`\bCLADE_[A-Z0-9_]+\b`)

// TestEnvVarsDefinedInGo: every CLADE_* variable the deployment files set
// or mention must be one the program reads (a quoted literal in non-test Go
// source: the env tags of the process config).
func TestEnvVarsDefinedInGo(t *testing.T) {
	files := walk(t, func(p string) bool { return !strings.HasSuffix(p, ".go") })
	files = append(files, "../Dockerfile")
	used := map[string][]string{}
	for _, f := range files {
		for _, m := range envRE.FindAllString(string(read(t, f)), -1) {
			if !contains(used[m], f) {
				used[m] = append(used[m], f)
			}
		}
	}
	for _, must := range []string{"CLADE_ADMIN_LISTEN", "CLADE_CONFIG", "CLADE_REDIS_URL", "CLADE_DATA_DIR"} {
		if used[must] == nil {
			t.Errorf("no deployment file sets %s", must)
		}
	}
	src := goSource(t)
	for _, name := range sortedKeysOf(used) {
		if !strings.Contains(src, `"`+name+`"`) {
			t.Errorf("%s (in %s) is not read by the program: no %q in non-test Go source",
				name, strings.Join(used[name], ", "), name)
		}
	}
}
