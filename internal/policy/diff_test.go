package policy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiff(t *testing.T) {
	old := mustLoad(t, "testdata/diff/old.yaml", opts(nil, false))
	new := mustLoad(t, "testdata/diff/new.yaml", opts(nil, false))
	want := []string{
		`admin: token b73e8bea… added`,
		`admin: token df6adb0b… revoked`,
		`estimate: server tool allowance changed from 0.5 to 1 USD`,
		`on_store_failure changed from reject to allow`,
		`pricing: model "acme-new" added (input 1, output 4, cache write 5m 1.25, cache write 1h 2, cache read 0.1 USD/MTok)`,
		`pricing: model "acme-retired" removed`,
		`pricing: model "acme-tuned-model" changed from (input 3, output 15, cache write 5m 3.75, cache write 1h 6, cache read 0.3 USD/MTok) to (input 2.5, output 15, cache write 5m 3.125, cache write 1h 5, cache read 0.25 USD/MTok)`,
		`pricing: unknown_model changed from reject to charge_max`,
		`service "ads-ranker" added (team ads, workspace production)`,
		`service "ads-ranker": budget "daily" (daily) added: 20 USD, not enforced (dry run)`,
		`service "ads-ranker": token 521e4d76… added`,
		// mover sets no on_store_failure of its own: the default changed.
		`service "mover": on_store_failure changed from reject to allow`,
		`service "mover": team changed from search to ads`,
		`service "mover": workspace changed from staging to production`,
		`service "old-batch" removed (its tokens are revoked)`,
		`service "recommendation": budget "daily" (daily) raised from 50 to 75 USD`,
		`service "recommendation": budget "total" (total) added: 1000000 USD`,
		`service "recommendation": budget "trial-cap" (monthly) lowered from 200 to 150 USD`,
		`service "recommendation": budget "trial-cap" (monthly) now enforced`,
		`service "recommendation": budget "weekly" (weekly) removed`,
		`service "recommendation": models allowed changed from [claude-sonnet-*] to [claude-sonnet-*, claude-haiku-*]`,
		`service "recommendation": rate limit changed from 20/s (burst 40) to 10/s (burst 10)`,
		`service "recommendation": token 2cb3e362… added`,
		`service "recommendation": token 5722119b… revoked`,
		`team "ads" added`,
		`team "ads": budget "weekly" (weekly) added: 1000 USD`,
		`team "legacy" removed`,
		`team "search": budget "monthly" (monthly) alerts changed from [0.5, 0.8] to [0.9]`,
		`team "search": budget "monthly" (monthly) time zone changed from UTC to Europe/Berlin`,
		`webhook "finance-slack": format changed from slack to json`,
		`webhook "old-hook" removed`,
		`webhook "pager" added (format slack)`,
		`workspace "production": key "prod-2026-06" removed`,
		`workspace "production": key "prod-2026-11" added`,
		`workspace "production": key in use changed from "prod-2026-09" to "prod-2026-11"`,
		`workspace "production": teams allowed changed from [search] to all teams`,
	}
	if d := cmp.Diff(want, Diff(old, new)); d != "" {
		t.Errorf("Diff(old, new) (-want +got):\n%s", d)
	}
	// Deterministic, and nothing changes between a policy and itself.
	for range 5 {
		if d := cmp.Diff(want, Diff(old, new)); d != "" {
			t.Fatalf("Diff is not deterministic:\n%s", d)
		}
	}
	if got := Diff(new, new); len(got) != 0 {
		t.Errorf("Diff(new, new) = %q", got)
	}
	// The reverse diff mirrors every change.
	back := Diff(new, old)
	for _, s := range []string{
		`service "old-batch" added (team legacy, workspace staging)`,
		`service "ads-ranker" removed (its tokens are revoked)`,
		`service "recommendation": budget "trial-cap" (monthly) no longer enforced (dry run)`,
		`service "recommendation": budget "daily" (daily) lowered from 75 to 50 USD`,
		`workspace "production": teams allowed changed from all teams to [search]`,
	} {
		if !slices.Contains(back, s) {
			t.Errorf("Diff(new, old) lacks %q", s)
		}
	}
}

// TestDiffFolder reviews a team's change to its own file, as a pull
// request against a policy folder would show it.
func TestDiffFolder(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "testdata/folder-good", dir)
	old := mustLoad(t, dir, opts(nil, false))
	writeAt(t, filepath.Join(dir, "teams", "search.yaml"), `budgets:
  - {period: monthly, limit_usd: 5000, alert_at: [0.5, 0.8]}
services:
  recommendation:
    workspace: production
    tokens:
      - sha256: 5722119b95f0a42f99565618e55861488130407ef0bedb10070734315e5c3d5a
      - sha256: 2cb3e362808c82e72f087acfe6fcb44a6a915d98e502ba256ff6f0cbef847b34
    budgets:
      - {period: daily, limit_usd: 60.5}
`)
	writeAt(t, filepath.Join(dir, "teams", "ml.yaml"), "budgets:\n  - {period: total, limit_usd: 100}\n")
	new := mustLoad(t, dir, opts(nil, false))
	want := []string{
		`service "recommendation": budget "daily" (daily) raised from 50 to 60.5 USD`,
		`service "recommendation": token 2cb3e362… added`,
		`service "search-api" removed (its tokens are revoked)`,
		`team "ml" added`,
		`team "ml": budget "total" (total) added: 100 USD`,
	}
	if d := cmp.Diff(want, Diff(old, new)); d != "" {
		t.Errorf("Diff (-want +got):\n%s", d)
	}
}

// TestDiffNeverShowsSecrets changes every secret value and checks the
// diff says only that a webhook URL changed, with no value.
func TestDiffNeverShowsSecrets(t *testing.T) {
	envA := map[string]string{"KEY_PROD_A": "sk-ant-a-" + canary, "KEY_PROD_OLD": "sk-ant-o-" + canary, "KEY_STAGING": "sk-ant-s-" + canary,
		"SLACK_URL": "https://hooks.slack.test/a-" + canary, "OLD_HOOK_URL": "https://hooks.test/o-" + canary}
	envB := map[string]string{}
	for k, v := range envA {
		envB[k] = v + "-rotated"
	}
	a := mustLoad(t, "testdata/diff/old.yaml", opts(envA, true))
	b := mustLoad(t, "testdata/diff/old.yaml", opts(envB, true))
	got := Diff(a, b)
	want := []string{`webhook "finance-slack": URL changed`, `webhook "old-hook": URL changed`}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Diff (-want +got):\n%s", d)
	}
	if strings.Contains(strings.Join(Diff(nil, b), "\n"), canary) {
		t.Error("a secret appears in Diff(nil, b)")
	}
}

func TestDiffFromNothing(t *testing.T) {
	dir := writeFiles(t, map[string]string{"p.yaml": `
workspaces:
  w:
    keys: [{name: k, env: K}]
teams:
  t: {}
services:
  s:
    team: t
    workspace: w
    tokens: [{sha256: 2cb3e362808c82e72f087acfe6fcb44a6a915d98e502ba256ff6f0cbef847b34}]
`})
	p := mustLoad(t, filepath.Join(dir, "p.yaml"), opts(nil, false))
	want := []string{
		`service "s" added (team t, workspace w)`,
		`service "s": token 2cb3e362… added`,
		`team "t" added`,
		`workspace "w" added`,
		`workspace "w": key "k" added`,
	}
	if d := cmp.Diff(want, Diff(nil, p)); d != "" {
		t.Errorf("Diff(nil, p) (-want +got):\n%s", d)
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
