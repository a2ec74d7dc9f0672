package policy

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
)

var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() }),
	cmp.Comparer(func(a, b *Team) bool { return (a == nil) == (b == nil) && (a == nil || a.Name == b.Name) }),
	cmp.Comparer(func(a, b *Workspace) bool { return (a == nil) == (b == nil) && (a == nil || a.Name == b.Name) }),
}

func loc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLoadGoodFile(t *testing.T) {
	p := mustLoad(t, "testdata/good.yaml", opts(testEnv, true))
	berlin, ny := loc(t, "Europe/Berlin"), loc(t, "America/New_York")

	wantWS := map[string]*Workspace{
		"production": {
			Name: "production",
			Keys: []Key{
				{Name: "prod-backend", Secret: "sk-ant-prod-canary-0001", Created: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), Env: "ANTHROPIC_KEY_PRODUCTION"},
				{Name: "prod-backend-old", Secret: "sk-ant-prod-canary-0000", Env: "ANTHROPIC_KEY_PRODUCTION_OLD"},
			},
			Budgets: []budget.Budget{{Scope: budget.ScopeWorkspace, Name: "production", ID: "monthly", Period: budget.Monthly, Limit: money.USD(20000), Enforce: true, Location: berlin}},
			Teams:   []string{"search", "ads"},
		},
		"staging": {
			Name: "staging",
			Keys: []Key{{Name: "staging", Secret: "sk-ant-staging-canary-0001", File: "testdata/secrets/staging-key"}},
		},
	}
	if d := cmp.Diff(wantWS, p.Workspaces, cmpOpts, cmp.Comparer(func(a, b Secret) bool { return string(a) == string(b) })); d != "" {
		t.Errorf("workspaces (-want +got):\n%s", d)
	}
	wantTeams := map[string]*Team{
		"search": {Name: "search", Budgets: []budget.Budget{{Scope: budget.ScopeTeam, Name: "search", ID: "monthly", Period: budget.Monthly, Limit: money.USD(5000), Enforce: true, Location: berlin, AlertAt: []float64{0.5, 0.8}}}},
		"ads":    {Name: "ads", Budgets: []budget.Budget{{Scope: budget.ScopeTeam, Name: "ads", ID: "weekly", Period: budget.Weekly, Limit: 1000_250_000_000, Enforce: true, Location: ny}}},
	}
	if d := cmp.Diff(wantTeams, p.Teams, cmpOpts); d != "" {
		t.Errorf("teams (-want +got):\n%s", d)
	}
	wantSvc := map[string]*Service{
		"recommendation": {
			Name: "recommendation", Team: &Team{Name: "search"}, Workspace: &Workspace{Name: "production"},
			Models: []string{"claude-sonnet-*", "claude-haiku-*"},
			Budgets: []budget.Budget{
				{Scope: budget.ScopeService, Name: "recommendation", ID: "daily", Period: budget.Daily, Limit: money.USD(50), Enforce: true, Location: berlin},
				{Scope: budget.ScopeService, Name: "recommendation", ID: "trial-cap", Period: budget.Monthly, Limit: money.USD(200), Enforce: false, Location: berlin},
			},
			RateLimit:      &RateLimit{RequestsPerSecond: 20, Burst: 40},
			OnStoreFailure: FailAllow, Fit: defaultFit,
			Tokens: []Token{
				{Name: "rec-prod", SHA256: digest(t, "5722119b95f0a42f99565618e55861488130407ef0bedb10070734315e5c3d5a")},
				{SHA256: digest(t, "7eff26c1e4cb8bdc8c24d5956c523aba02fa723a7d89b289b848362eb18e2011")},
			},
		},
		"ads-ranker": {
			Name: "ads-ranker", Team: &Team{Name: "ads"}, Workspace: &Workspace{Name: "staging"},
			Budgets: []budget.Budget{
				{Scope: budget.ScopeService, Name: "ads-ranker", ID: "day-utc", Period: budget.Daily, Limit: 10_500_000_000, Enforce: true, Location: time.UTC},
				{Scope: budget.ScopeService, Name: "ads-ranker", ID: "day-berlin", Period: budget.Daily, Limit: 1, Enforce: true, Location: berlin},
			},
			RateLimit:      &RateLimit{RequestsPerSecond: 2.5, Burst: 3}, // burst defaults to ceil(rps)
			OnStoreFailure: FailReject, Fit: defaultFit,                  // inherited
			Tokens: []Token{{SHA256: digest(t, "b73e8beae2e60cfed6974121f487eb0a272efd97cdd8479db6e81eac335400f8")}},
		},
	}
	if d := cmp.Diff(wantSvc, p.Services, cmpOpts); d != "" {
		t.Errorf("services (-want +got):\n%s", d)
	}
	if p.OnStoreFailure != FailReject {
		t.Errorf("OnStoreFailure = %q", p.OnStoreFailure)
	}
	if p.UnknownTools != UnknownToolsAllow {
		t.Errorf("UnknownTools = %q, want allow", p.UnknownTools)
	}
	if p.Estimate.ServerToolAllowance != 750_000_000 {
		t.Errorf("ServerToolAllowance = %d", p.Estimate.ServerToolAllowance)
	}
	wantPricing := Pricing{
		Models:       map[string]ModelPrice{"acme-tuned-model": {Input: 3_000_000_000, Output: 15_000_000_000, CacheWrite5m: 3_750_000_000, CacheWrite1h: 6_000_000_000, CacheRead: 300_000_000}},
		UnknownModel: UnknownChargeMax,
	}
	if d := cmp.Diff(wantPricing, p.Pricing); d != "" {
		t.Errorf("pricing (-want +got):\n%s", d)
	}
	wantHooks := []Webhook{
		{Name: "finance-slack", URL: "https://hooks.slack.test/services/CANARY", Format: "slack"},
		{Name: "finance-json", URL: "https://hooks.example.test/json-canary", Format: "json"},
	}
	if d := cmp.Diff(wantHooks, p.Webhooks, cmp.Comparer(func(a, b Secret) bool { return string(a) == string(b) })); d != "" {
		t.Errorf("webhooks (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]Token{{Name: "ops", SHA256: digest(t, "df6adb0b23fa33235f4aee6a0d62c118b00d71c07c81be87067b4f5892e66dbc")}}, p.AdminTokens); d != "" {
		t.Errorf("admin tokens (-want +got):\n%s", d)
	}
	if got := len(p.AllBudgets()); got != 7 {
		t.Errorf("AllBudgets has %d budgets, want 7", got)
	}
}

func TestLoadGoodFolder(t *testing.T) {
	p := mustLoad(t, "testdata/folder-good", opts(testEnv, true))
	utc := time.UTC
	wantTeams := map[string]*Team{
		"search": {Name: "search", Budgets: []budget.Budget{{Scope: budget.ScopeTeam, Name: "search", ID: "monthly", Period: budget.Monthly, Limit: money.USD(5000), Enforce: true, Location: utc, AlertAt: []float64{0.5, 0.8}}}},
		"ads":    {Name: "ads", Budgets: []budget.Budget{{Scope: budget.ScopeTeam, Name: "ads", ID: "weekly", Period: budget.Weekly, Limit: money.USD(1000), Enforce: true, Location: utc}}},
	}
	if d := cmp.Diff(wantTeams, p.Teams, cmpOpts); d != "" {
		t.Errorf("teams (-want +got):\n%s", d)
	}
	wantSvc := map[string]*Service{
		"recommendation": {
			Name: "recommendation", Team: &Team{Name: "search"}, Workspace: &Workspace{Name: "production"},
			Budgets:        []budget.Budget{{Scope: budget.ScopeService, Name: "recommendation", ID: "daily", Period: budget.Daily, Limit: money.USD(50), Enforce: true, Location: utc}},
			OnStoreFailure: FailReject, Fit: defaultFit,
			Tokens: []Token{{SHA256: digest(t, "5722119b95f0a42f99565618e55861488130407ef0bedb10070734315e5c3d5a")}},
		},
		"search-api": {Name: "search-api", Team: &Team{Name: "search"}, Workspace: &Workspace{Name: "sandbox"}, OnStoreFailure: FailReject, Fit: defaultFit,
			Tokens: []Token{{SHA256: digest(t, "521e4d76873c1e48be3596d39fb701677d2247c8cac8baf6627316dfffc62ee0")}}},
		"ads-ranker": {Name: "ads-ranker", Team: &Team{Name: "ads"}, Workspace: &Workspace{Name: "production"}, OnStoreFailure: FailAllow, Fit: defaultFit,
			Tokens: []Token{{SHA256: digest(t, "b73e8beae2e60cfed6974121f487eb0a272efd97cdd8479db6e81eac335400f8")}}},
	}
	if d := cmp.Diff(wantSvc, p.Services, cmpOpts, cmp.FilterPath(func(p cmp.Path) bool {
		return p.Last().String() == ".Budgets" || p.Last().String() == ".Models"
	}, cmp.Transformer("nilEmpty", func(s []budget.Budget) []budget.Budget {
		if len(s) == 0 {
			return nil
		}
		return s
	}))); d != "" {
		t.Errorf("services (-want +got):\n%s", d)
	}
	if got, want := p.Workspaces["production"].Teams, []string{"search", "ads"}; !cmp.Equal(got, want) {
		t.Errorf("production teams = %v, want %v", got, want)
	}
	if p.Pricing.UnknownModel != UnknownReject || p.Estimate.ServerToolAllowance != 500_000_000 {
		t.Errorf("defaults: unknown_model %q, allowance %d", p.Pricing.UnknownModel, p.Estimate.ServerToolAllowance)
	}
	if s, ok := p.ServiceByToken("tok-search-api"); !ok || s.Name != "search-api" {
		t.Errorf("ServiceByToken(tok-search-api) = %v, %v", s, ok)
	}
	if !p.IsAdminToken("tok-admin") {
		t.Error("admin token from clade.yaml not recognised")
	}
}

func TestServiceByTokenAndIsAdminToken(t *testing.T) {
	p := mustLoad(t, "testdata/good.yaml", opts(testEnv, false))
	tests := []struct {
		token   string
		service string // "" means no service
		admin   bool
	}{
		{token: "tok-rec-1", service: "recommendation"},
		{token: "tok-rec-2", service: "recommendation"}, // written in upper-case hex
		{token: "tok-ads-1", service: "ads-ranker"},
		{token: "tok-admin", admin: true},
		{token: "tok-rec-1 "},
		{token: ""},
		{token: "5722119b95f0a42f99565618e55861488130407ef0bedb10070734315e5c3d5a"}, // the hash is not the token
	}
	for _, tt := range tests {
		s, ok := p.ServiceByToken(tt.token)
		if got := ""; ok {
			got = s.Name
			if got != tt.service {
				t.Errorf("ServiceByToken(%q) = %q, want %q", tt.token, got, tt.service)
			}
		} else if tt.service != "" {
			t.Errorf("ServiceByToken(%q) found nothing, want %q", tt.token, tt.service)
		}
		if got := p.IsAdminToken(tt.token); got != tt.admin {
			t.Errorf("IsAdminToken(%q) = %v, want %v", tt.token, got, tt.admin)
		}
	}
}

// TestBudgetWindows checks that time zones compile into the budgets: the
// top-level zone is the default, a budget's own zone wins.
func TestBudgetWindows(t *testing.T) {
	p := mustLoad(t, "testdata/good.yaml", opts(testEnv, false))
	find := func(bs []budget.Budget, id string) budget.Budget {
		for _, b := range bs {
			if b.ID == id {
				return b
			}
		}
		t.Fatalf("no budget %q", id)
		return budget.Budget{}
	}
	now := time.Date(2026, 11, 15, 23, 30, 0, 0, time.UTC) // a Sunday; already Monday in Berlin
	tests := []struct {
		b          budget.Budget
		start, end time.Time
		key        string
	}{
		{
			b:     find(p.Services["recommendation"].Budgets, "daily"), // inherits Europe/Berlin
			start: time.Date(2026, 11, 15, 23, 0, 0, 0, time.UTC),
			end:   time.Date(2026, 11, 16, 23, 0, 0, 0, time.UTC),
			key:   "service:recommendation:daily:20261116",
		},
		{
			b:     find(p.Services["ads-ranker"].Budgets, "day-utc"), // overrides with UTC
			start: time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC),
			end:   time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC),
			key:   "service:ads-ranker:day-utc:20261115",
		},
		{
			b:     find(p.Teams["ads"].Budgets, "weekly"), // America/New_York, weeks start Monday
			start: time.Date(2026, 11, 9, 5, 0, 0, 0, time.UTC),
			end:   time.Date(2026, 11, 16, 5, 0, 0, 0, time.UTC),
			key:   "team:ads:weekly:20261109",
		},
		{
			b:     find(p.Workspaces["production"].Budgets, "monthly"),
			start: time.Date(2026, 10, 31, 23, 0, 0, 0, time.UTC), // CET: DST ended Oct 25
			end:   time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC),
			key:   "workspace:production:monthly:20261101",
		},
	}
	for _, tt := range tests {
		start, end := tt.b.Window(now)
		if !start.Equal(tt.start) || !end.Equal(tt.end) {
			t.Errorf("%s: window = [%v, %v), want [%v, %v)", tt.b.Label(), start.UTC(), end.UTC(), tt.start, tt.end)
		}
		if got := tt.b.Key(now); got != tt.key {
			t.Errorf("%s: key = %q, want %q", tt.b.Label(), got, tt.key)
		}
	}
}

func TestAmountsAreExact(t *testing.T) {
	dir := writeFiles(t, map[string]string{"p.yaml": `
teams:
  search:
    budgets:
      - {id: a, period: total, limit_usd: 12345678.123456789}
      - {id: b, period: total, limit_usd: 0.1}
      - {id: c, period: total, limit_usd: "0.3"}
      - {id: d, period: total, limit_usd: 1e3}
      - {id: e, period: total, limit_usd: 7}
`})
	p := mustLoad(t, dir+"/p.yaml", opts(nil, false))
	want := map[string]money.Nanos{"a": 12_345_678_123_456_789, "b": 100_000_000, "c": 300_000_000, "d": money.USD(1000), "e": money.USD(7)}
	got := map[string]money.Nanos{}
	for _, b := range p.Teams["search"].Budgets {
		got[b.ID] = b.Limit
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("limits (-want +got):\n%s", d)
	}
}

func TestLoadMissingPath(t *testing.T) {
	_, err := Load("testdata/no-such-policy.yaml", opts(nil, false))
	if err == nil || errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no-such-policy.yaml") {
		t.Errorf("err = %v, want a plain not-found error naming the path", err)
	}
}

// TestAnchors checks that YAML anchors and aliases work where values are
// expected, and that each alias compiles to its own owner's budgets.
func TestAnchors(t *testing.T) {
	dir := writeFiles(t, map[string]string{"p.yaml": `
workspaces:
  w:
    keys: [{name: k, env: K}]
teams:
  a:
    budgets: &caps
      - {period: daily, limit_usd: 5}
  b:
    budgets: *caps
`})
	p := mustLoad(t, dir+"/p.yaml", opts(nil, false))
	for _, name := range []string{"a", "b"} {
		bs := p.Teams[name].Budgets
		if len(bs) != 1 || bs[0].Name != name || bs[0].Limit != money.USD(5) {
			t.Errorf("team %s budgets = %+v", name, bs)
		}
	}
}

// Ids need only be unique: a budget keeping the period as its id may stand
// beside another of the same period with an explicit id.
func TestDefaultAndExplicitIDOfOnePeriod(t *testing.T) {
	dir := writeFiles(t, map[string]string{"clade.yaml": `
workspaces:
  production:
    keys: [{name: prod, env: ANTHROPIC_KEY_PRODUCTION, created: 2026-09-01}]
teams:
  search:
    budgets:
      - {period: daily, limit_usd: 10}
      - {id: burst, period: daily, limit_usd: 2}
`})
	p := mustLoad(t, filepath.Join(dir, "clade.yaml"), opts(testEnv, false))
	var ids []string
	for _, b := range p.Teams["search"].Budgets {
		ids = append(ids, b.ID)
	}
	if strings.Join(ids, ",") != "daily,burst" {
		t.Fatalf("team budget ids = %v, want [daily burst]", ids)
	}
}

var defaultFit = Fit{MinMaxTokens: DefaultMinMaxTokens}
