package policy

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
)

const principalsBase = `
workspaces:
  development:
    keys: [{name: dev, env: ANTHROPIC_KEY_SANDBOX}]
teams:
  platform: {}
`

const principalsServices = `
services:
  claude-code:
    team: platform
    workspace: development
    tokens: [{sha256: "5722119b95f0a42f99565618e55861488130407ef0bedb10070734315e5c3d5a"}]
    budgets: [{period: monthly, limit_usd: 5000}]
    principals:
      - from: claude_code.user
        budgets: [{period: daily, limit_usd: 20}, {period: monthly, limit_usd: 300, alert_at: [0.8]}]
        overrides:
          "alice@example.com": [{period: daily, limit_usd: 50}]
      - from: claude_code.session
        budgets: [{period: total, limit_usd: 10}]
  support-bot:
    team: platform
    workspace: development
    principals:
      - from: metadata.user_id
        budgets: [{period: daily, limit_usd: 1}]
        when_missing: allow
      - from: header:X-Customer-ID
        budgets: [{period: monthly, limit_usd: 100}]
`

func TestPrincipalsCompile(t *testing.T) {
	dir := writeFiles(t, map[string]string{"p.yaml": principalsBase + principalsServices})
	p := mustLoad(t, filepath.Join(dir, "p.yaml"), opts(testEnv, true))
	cc := p.Services["claude-code"]
	if len(cc.Principals) != 2 {
		t.Fatalf("claude-code has %d principal levels, want 2", len(cc.Principals))
	}
	user := cc.Principal(FromClaudeCodeUser)
	if user == nil || user.WhenMissing != MissingReject || user.Hashed() {
		t.Fatalf("user level = %+v", user)
	}
	bob := user.BudgetsFor("bob@example.com")
	if len(bob) != 2 || bob[0].Scope != budget.ScopePrincipal || bob[0].Name != "claude-code/claude_code.user/bob@example.com" ||
		bob[0].Limit != 20*money.PerUSD || bob[1].ID != "monthly" || len(bob[1].AlertAt) != 1 {
		t.Fatalf("default budgets = %+v", bob)
	}
	alice := user.BudgetsFor("alice@example.com")
	if len(alice) != 1 || alice[0].Limit != 50*money.PerUSD || alice[0].Name != "claude-code/claude_code.user/alice@example.com" {
		t.Fatalf("override budgets = %+v", alice)
	}
	if bk := bob[0].Key(testNow); bk != "principal:claude-code/claude_code.user/bob@example.com:daily:20261115" {
		t.Fatalf("window key %q", bk)
	}
	sb := p.Services["support-bot"]
	if sb.Principals[0].WhenMissing != MissingAllow || sb.Principals[1].From != "header:x-customer-id" || sb.Principals[1].Header() != "x-customer-id" {
		t.Fatalf("support-bot levels: %+v %+v", sb.Principals[0], sb.Principals[1])
	}
	for _, b := range p.AllBudgets() {
		if b.Scope == budget.ScopePrincipal {
			t.Fatalf("AllBudgets lists a principal budget %s: principals are per value, never policy-wide", b.Label())
		}
	}
	got, ok := p.PrincipalBudget("claude-code/claude_code.user/alice@example.com", "daily")
	if !ok || got.Limit != 50*money.PerUSD {
		t.Fatalf("PrincipalBudget = %+v, %v", got, ok)
	}
	if _, ok := p.PrincipalBudget("claude-code/claude_code.agent/x", "daily"); ok {
		t.Fatal("PrincipalBudget found a budget of a level the service does not have")
	}
}

func TestPrincipalsHashValues(t *testing.T) {
	env := map[string]string{"ANTHROPIC_KEY_SANDBOX": "sk-ant-sandbox-canary-0001", "PRINCIPAL_KEY": "0123456789abcdef0123456789abcdef"}
	yaml := principalsBase + "principals: {hash_values: true, hash_key_env: PRINCIPAL_KEY}\n" + principalsServices
	dir := writeFiles(t, map[string]string{"p.yaml": yaml})
	p := mustLoad(t, filepath.Join(dir, "p.yaml"), opts(env, true))
	user := p.Services["claude-code"].Principal(FromClaudeCodeUser)
	h := user.Stored("alice@example.com")
	if !strings.HasPrefix(h, "h:") || len(h) != 34 || strings.Contains(h, "alice") {
		t.Fatalf("stored value %q is not a keyed hash", h)
	}
	if user.Stored("alice@example.com") != h || user.Stored("bob@example.com") == h {
		t.Fatal("hash is not a stable function of the value")
	}
	// Overrides are written as raw values and still apply to the hash.
	if bs := user.BudgetsFor(h); len(bs) != 1 || bs[0].Limit != 50*money.PerUSD {
		t.Fatalf("override under hashing = %+v", bs)
	}
	// Another key gives other hashes: the key is what makes them keyed.
	env["PRINCIPAL_KEY"] = "fedcba9876543210fedcba9876543210"
	p2 := mustLoad(t, filepath.Join(dir, "p.yaml"), opts(env, true))
	if p2.Services["claude-code"].Principal(FromClaudeCodeUser).Stored("alice@example.com") == h {
		t.Fatal("the hash does not depend on the key")
	}
	if _, ok := p.PrincipalBudget("claude-code/claude_code.user/alice@example.com", "daily"); !ok {
		t.Fatal("PrincipalBudget does not accept the raw value under hashing")
	}
}

func TestPrincipalsProblems(t *testing.T) {
	yaml := principalsBase + `
principals: {hash_values: true}
services:
  bot:
    team: platform
    workspace: development
    principals:
      - from: header:authorization
        budgets: [{period: daily, limit_usd: 1}]
      - from: claude_code.user
        budgets: []
      - from: claude_code.user
        budgets: [{period: daily, limit_usd: 1}]
        when_missing: sometimes
      - from: metadata.user
        budgets: [{period: daily, limit_usd: 1}]
      - from: header:bad name
        budgets: [{period: daily, limit_usd: 1}]
      - from: metadata.user_id
        budgets: [{period: daily, limit_usd: 1}]
        overrides:
          "x": [{period: daily, limit_usd: 0}]
        extra: 1
`
	dir := writeFiles(t, map[string]string{"p.yaml": yaml})
	_, err := Load(filepath.Join(dir, "p.yaml"), opts(testEnv, false))
	if err == nil {
		t.Fatal("a policy with bad principals loaded")
	}
	for _, want := range []string{
		"principals: set one of hash_key_env or hash_key_file",
		"services.bot.principals[0].from: header authorization carries credentials and cannot name a principal",
		"services.bot.principals[1].budgets: a principal needs at least one budget",
		`services.bot.principals[2].from: principal source "claude_code.user" also used at line`,
		`services.bot.principals[2].when_missing: must be reject or allow, not "sometimes"`,
		`services.bot.principals[3].from: must be metadata.user_id, header:<name>, claude_code.user, claude_code.session or claude_code.agent, not "metadata.user"`,
		`services.bot.principals[4].from: "bad name" is not an HTTP header name`,
		`services.bot.principals[5].overrides.x[0].limit_usd: must be more than 0`,
		`services.bot.principals[5].extra: unknown key`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
}

func TestPrincipalsShortHashKey(t *testing.T) {
	env := map[string]string{"ANTHROPIC_KEY_SANDBOX": "sk-ant-sandbox-canary-0001", "PRINCIPAL_KEY": "short"}
	dir := writeFiles(t, map[string]string{"p.yaml": principalsBase + "principals: {hash_values: true, hash_key_env: PRINCIPAL_KEY}\n" + principalsServices})
	_, err := Load(filepath.Join(dir, "p.yaml"), opts(env, true))
	if err == nil || !strings.Contains(err.Error(), "shorter than 16 bytes") || strings.Contains(err.Error(), "short\"") {
		t.Fatalf("a 5-byte hash key: %v", err)
	}
}

func TestPrincipalsInTeamFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"clade.yaml": `
workspaces:
  development:
    keys: [{name: dev, env: ANTHROPIC_KEY_SANDBOX}]
`,
		"teams/platform.yaml": `
services:
  claude-code:
    workspace: development
    principals:
      - from: claude_code.session
        budgets: [{period: total, limit_usd: 10}]
`,
	})
	p := mustLoad(t, dir, opts(testEnv, true))
	pr := p.Services["claude-code"].Principal(FromClaudeCodeSession)
	if pr == nil || pr.Budgets[0].Limit != 10*money.PerUSD {
		t.Fatalf("team file principal = %+v", pr)
	}
}

func TestPrincipalsDiff(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.yaml": principalsBase + principalsServices,
		"b.yaml": principalsBase + strings.Replace(principalsServices, "{period: daily, limit_usd: 20}", "{period: daily, limit_usd: 25}", 1)})
	a := mustLoad(t, filepath.Join(dir, "a.yaml"), opts(testEnv, false))
	b := mustLoad(t, filepath.Join(dir, "b.yaml"), opts(testEnv, false))
	got := strings.Join(Diff(a, b), "\n")
	want := `service "claude-code": principals from claude_code.user: budget "daily" (daily) raised from 20 to 25 USD`
	if got != want {
		t.Fatalf("diff:\n%s\nwant:\n%s", got, want)
	}
}
