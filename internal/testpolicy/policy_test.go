package testpolicy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

const (
	token      = "clade_sk_TESTPOLICYTOKEN0123456789abcdefgh"
	otherToken = "clade_sk_TESTPOLICYOTHER0123456789abcdefgh"
	adminToken = "clade_admin_TESTPOLICYADMIN0123456789"
)

// everything uses every part of the builder, with names and values that
// need quoting.
func everything() Policy {
	return Policy{
		Timezone:       "Europe/Paris",
		OnStoreFailure: "allow",
		UnknownTools:   "allow",
		FitMaxTokens:   true,
		UnknownModel:   "charge_max",
		Workspaces: []Workspace{{
			Name: "production", AnthropicID: "wrkspc_01Prod",
			Keys:    []Key{{Name: "prod-backend", Env: "TEST_WORKSPACE_KEY", Created: "2026-09-01", AnthropicID: "apikey_01Backend"}},
			Budgets: []Budget{Monthly("10000")},
		}},
		Teams:    []Team{{Name: "search", Budgets: []Budget{Monthly("5000", 0.5, 0.8)}}, {Name: "support"}},
		Webhooks: []Webhook{{Name: "ops", URLEnv: "HOOK_URL", Format: "json"}},
		Services: []Service{
			{
				Name: "recommendation", Team: "search", Workspace: "production",
				Tokens:    []string{token},
				Models:    []string{"claude-sonnet-*", "claude-haiku-*"},
				Budgets:   []Budget{Daily("0.15", 0.8), {ID: "burst", Period: "daily", LimitUSD: "1e1"}, Total("1000")},
				RateLimit: &RateLimit{RequestsPerSecond: 0.5, Burst: 4},
				Principals: []Principal{
					{From: "metadata.user_id", Budgets: []Budget{Daily("0.1", 0.5)}, WhenMissing: "reject",
						Overrides: []Override{{Value: "vip-1", Budgets: []Budget{Daily("5")}}, {Value: "carol@example.com", Budgets: []Budget{Weekly("1")}}}},
					{From: "header:x-customer-id", Budgets: []Budget{Monthly("100")}, WhenMissing: "allow"},
				},
			},
			{Name: "indexer", Team: "support", Workspace: "production", Tokens: []string{otherToken}},
		},
		AdminTokens: []string{adminToken},
		Principals:  &PrincipalSettings{HashValues: true, HashKeyEnv: "PRINCIPAL_HASH_KEY"},
		Reconcile:   &Reconcile{AdminKeyEnv: "TEST_ADMIN_KEY", ChargeUnmetered: true},
	}
}

func load(t *testing.T, p Policy) *policy.Policy {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clade.yaml")
	if err := os.WriteFile(path, []byte(p.YAML()), 0o600); err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC) }
	got, err := policy.Load(path, policy.LoadOptions{Now: now})
	if err != nil {
		t.Fatalf("the gateway refuses the policy: %v\n%s", err, p.YAML())
	}
	return got
}

func TestEveryPartLoadsAsWritten(t *testing.T) {
	got := load(t, everything())
	if got.OnStoreFailure != policy.FailAllow || got.UnknownTools != policy.UnknownToolsAllow || !got.Fit.Enabled {
		t.Errorf("top-level settings: %v %v %+v", got.OnStoreFailure, got.UnknownTools, got.Fit)
	}
	if got.Pricing.UnknownModel != policy.UnknownChargeMax {
		t.Errorf("pricing.unknown_model = %v", got.Pricing.UnknownModel)
	}
	if !got.HashPrincipals {
		t.Error("principals.hash_values not set")
	}
	if !got.Reconcile.ChargeUnmetered {
		t.Error("reconcile.charge_unmetered not set")
	}
	if len(got.Webhooks) != 1 || got.Webhooks[0].Name != "ops" {
		t.Errorf("webhooks = %+v", got.Webhooks)
	}
	if len(got.AdminTokens) != 1 {
		t.Errorf("admin tokens = %d", len(got.AdminTokens))
	}

	ws := got.Workspaces["production"]
	if ws == nil || len(ws.Keys) != 1 || ws.Keys[0].Name != "prod-backend" || len(ws.Budgets) != 1 {
		t.Fatalf("workspace = %+v", ws)
	}
	if team := got.Teams["support"]; team == nil || len(team.Budgets) != 0 {
		t.Errorf("team without budgets = %+v", team)
	}
	if b := got.Teams["search"].Budgets; len(b) != 1 || b[0].Limit != 5000*money.PerUSD || len(b[0].AlertAt) != 2 {
		t.Errorf("team budgets = %+v", b)
	}

	svc, ok := got.ServiceByToken(token)
	if !ok || svc.Name != "recommendation" {
		t.Fatalf("the token does not name recommendation: %v %v", svc, ok)
	}
	if other, ok := got.ServiceByToken(otherToken); !ok || other.Name != "indexer" {
		t.Errorf("the other token: %v %v", other, ok)
	}
	want := map[string]money.Nanos{"daily": money.PerUSD * 15 / 100, "burst": 10 * money.PerUSD, "total": 1000 * money.PerUSD}
	if len(svc.Budgets) != len(want) {
		t.Errorf("service budgets = %+v", svc.Budgets)
	}
	for _, b := range svc.Budgets {
		if want[b.ID] != b.Limit {
			t.Errorf("budget %s = %v, want %v", b.ID, b.Limit, want[b.ID])
		}
	}
	if len(svc.Models) != 2 || svc.RateLimit == nil || svc.RateLimit.Burst != 4 {
		t.Errorf("models %v, rate limit %+v", svc.Models, svc.RateLimit)
	}
	if len(svc.Principals) != 2 || len(svc.Principals[0].Overrides) != 2 {
		t.Errorf("principals = %+v", svc.Principals)
	}
}

func TestZeroPartsAreLeftOut(t *testing.T) {
	p := Policy{
		Workspaces: []Workspace{{Name: "w", Keys: []Key{{Name: "k", Env: "TEST_WORKSPACE_KEY"}}}},
		Teams:      []Team{{Name: "t"}},
		Services:   []Service{{Name: "s", Team: "t", Workspace: "w", Tokens: []string{token}}},
	}
	const want = `workspaces:
  w:
    keys:
      - {name: k, env: TEST_WORKSPACE_KEY}
teams:
  t: {}
services:
  s:
    team: t
    workspace: w
    tokens:
      - sha256: "` + "%s" + `"
`
	if got, want := p.YAML(), fmt.Sprintf(want, SHA256(token)); got != want {
		t.Errorf("YAML =\n%s\nwant\n%s", got, want)
	}
	got := load(t, p)
	if got.OnStoreFailure != policy.FailReject {
		t.Errorf("on_store_failure written though not given: %v", got.OnStoreFailure)
	}
}

func TestStringsThatReadAsOtherTypesAreQuoted(t *testing.T) {
	for s, want := range map[string]string{
		"production": "production", "no": `"no"`, "true": `"true"`, "2026": `"2026"`,
		"claude-haiku-*": `"claude-haiku-*"`, "a: b": `"a: b"`, "": `""`, "Off": `"Off"`,
		"TEST_WORKSPACE_KEY": "TEST_WORKSPACE_KEY", "Europe/Paris": `"Europe/Paris"`, "metadata.user_id": "metadata.user_id",
	} {
		if got := str(s); got != want {
			t.Errorf("str(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestServiceFindsByName(t *testing.T) {
	p := everything()
	p.Service("indexer").Models = []string{"claude-haiku-*"}
	if got := load(t, p).Services["indexer"].Models; len(got) != 1 {
		t.Errorf("models set through Service = %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("Service of an unknown name did not panic")
		}
	}()
	p.Service("nobody")
}

// TestImportsOnlyTheStandardLibrary: tests of any package may build a
// policy without linking the gateway.
func TestImportsOnlyTheStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/clade-gateway/clade-gateway/internal/testpolicy" {
			t.Errorf("testpolicy depends on %s", p)
		}
	}
}
