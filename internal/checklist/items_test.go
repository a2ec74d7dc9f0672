package checklist

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/trail"
)

var testNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func item(r *Report, id string) Item {
	for _, it := range r.Items {
		if it.ID == id {
			return it
		}
	}
	return Item{}
}

// base is a small policy that passes every policy item.
func base() *policy.Policy {
	t := &policy.Team{Name: "search", Budgets: []budget.Budget{{Enforce: true, AlertAt: []float64{0.8}}}}
	ws := &policy.Workspace{Name: "production", Environment: policy.EnvProduction,
		Keys: []policy.Key{{Name: "prod-search", Env: "KEY_PROD", Created: testNow.Add(-10 * day)}}}
	s := &policy.Service{Name: "search-api", Team: t, Workspace: ws, OnStoreFailure: policy.FailReject,
		Tokens: []policy.Token{{Name: "a", SHA256: sha256.Sum256([]byte("a"))}}}
	return &policy.Policy{
		Workspaces:  map[string]*policy.Workspace{ws.Name: ws},
		Teams:       map[string]*policy.Team{t.Name: t},
		Services:    map[string]*policy.Service{s.Name: s},
		Webhooks:    []policy.Webhook{{Name: "slack"}},
		AdminTokens: []policy.Token{{Name: "alice", SHA256: sha256.Sum256([]byte("admin"))}},
		Pricing:     policy.Pricing{UnknownModel: policy.UnknownReject},
	}
}

func run(p *policy.Policy, o Options) *Report {
	if o.Now == nil {
		o.Now = func() time.Time { return testNow }
	}
	if o.AdminListen == "" {
		o.AdminListen = "127.0.0.1:9090"
	}
	return Evaluate(context.Background(), p, o)
}

func TestBasePasses(t *testing.T) {
	r := run(base(), Options{})
	if r.Summary != (Summary{Pass: 13, Warn: 2}) {
		t.Errorf("summary %+v, want 13 pass and the 2 store items not checked", r.Summary)
	}
	var ids []string
	for _, it := range r.Items {
		ids = append(ids, it.ID)
	}
	if strings.Join(ids, " ") != strings.Join(Items(), " ") {
		t.Errorf("report order %v, want Items() %v", ids, Items())
	}
}

// The loader refuses these, so only a hand-built policy shows them: the
// checklist still says so if one ever gets through.
func TestDuplicateTokenAndOrphanService(t *testing.T) {
	p := base()
	dup := p.Services["search-api"].Tokens[0]
	p.Services["other"] = &policy.Service{Name: "other", Team: &policy.Team{Name: "gone"}, Workspace: p.Workspaces["production"],
		Tokens: []policy.Token{dup}}
	p.AdminTokens = append(p.AdminTokens, policy.Token{Name: "bob", SHA256: dup.SHA256})
	r := run(p, Options{})
	st := item(r, ItemServiceTokens)
	if st.Status != Fail || !strings.HasSuffix(st.Reason, "(service other, service search-api, admin.tokens)") {
		t.Errorf("service_tokens: %+v", st)
	}
	if so := item(r, ItemServiceOwners); so.Status != Fail || !strings.Contains(so.Reason, "services whose team is gone: service other") {
		t.Errorf("service_owners: %+v", so)
	}
}

func TestSharedKeyValueNeverShown(t *testing.T) {
	p := base()
	p.Workspaces["production"].Keys[0].Secret = "sk-ant-CANARY"
	p.Workspaces["staging"] = &policy.Workspace{Name: "staging", Environment: policy.EnvStaging,
		Keys: []policy.Key{{Name: "stg-search", File: "/run/secrets/stg", Secret: "sk-ant-CANARY", Created: testNow}}}
	r := run(p, Options{})
	it := item(r, ItemWorkspaceKeys)
	if it.Status != Fail || !strings.Contains(it.Reason, "production/prod-search = staging/stg-search") {
		t.Errorf("workspace_keys: %+v", it)
	}
	var b strings.Builder
	_ = r.WriteJSON(&b)
	_ = r.WriteText(&b)
	if strings.Contains(b.String(), "CANARY") {
		t.Error("the report shows a key")
	}
}

func TestAdminListener(t *testing.T) {
	for addr, want := range map[string]Status{
		"127.0.0.1:9090": Pass, "localhost:9090": Pass, "10.1.2.3:9090": Pass, "[::1]:9090": Pass, "[fd00::5]:9090": Pass,
		":9090": Warn, "0.0.0.0:9090": Warn, "[::]:9090": Warn, "admin.example.com:9090": Warn, "9090": Warn,
		"203.0.113.10:9090": Fail, "[2001:db8::1]:9090": Fail, "8.8.8.8:9090": Fail,
	} {
		if got := item(run(base(), Options{AdminListen: addr}), ItemAdminListener); got.Status != want {
			t.Errorf("%s: %s (%s), want %s", addr, got.Status, got.Reason, want)
		}
	}
}

func TestKeyNames(t *testing.T) {
	for _, tc := range []struct {
		name, ws string
		ok       bool
	}{
		{"key-1", "production", false}, {"default", "production", false}, {"prod-2", "production", false},
		{"production", "production", false}, {"anthropic_key_v2", "x", false}, {"new", "x", false},
		{"prod-search", "production", true}, {"search", "production", true}, {"ads-ranker-old", "x", true},
		{"ab-test", "x", true}, {"live-captions", "x", true},
	} {
		if got := saysWhatItServes(tc.name, tc.ws); got != tc.ok {
			t.Errorf("saysWhatItServes(%q, %q) = %v", tc.name, tc.ws, got)
		}
	}
}

func TestEnvironmentsFromNames(t *testing.T) {
	p := base()
	ws := p.Workspaces["production"]
	ws.Environment = ""
	ws.Name = "shared"
	p.Workspaces = map[string]*policy.Workspace{"shared": ws}
	ws.Keys[0].Env = "ANTHROPIC_KEY_STAGING"
	it := item(run(p, Options{}), ItemWorkspaceEnvironment)
	if it.Status != Fail || !strings.Contains(it.Details[0], "holds production (key prod-search) and staging (variable ANTHROPIC_KEY_STAGING)") {
		t.Errorf("workspace_environment: %+v", it)
	}
}

// Feature words are not environments: an A/B-test service in production
// is fine; a sandbox service is not.
func TestEnvironmentWordsInServiceNames(t *testing.T) {
	for name, want := range map[string]Status{"ab-test-ranker": Pass, "live-captions": Pass, "search-sandbox": Fail, "search-dev": Fail} {
		p := base()
		s := p.Services["search-api"]
		s.Name = name
		p.Services = map[string]*policy.Service{name: s}
		if got := item(run(p, Options{}), ItemWorkspaceEnvironment); got.Status != want {
			t.Errorf("service %s in production: %s (%s), want %s", name, got.Status, got.Reason, want)
		}
	}
}

func TestRotationThresholds(t *testing.T) {
	for _, tc := range []struct {
		age  time.Duration
		want Status
	}{
		{75 * day, Pass}, {75*day + time.Hour, Warn}, {90 * day, Warn}, {90*day + time.Hour, Fail},
	} {
		p := base()
		p.Workspaces["production"].Keys[0].Created = testNow.Add(-tc.age)
		if got := item(run(p, Options{}), ItemKeyRotation); got.Status != tc.want {
			t.Errorf("age %v: %s, want %s", tc.age, got.Status, tc.want)
		}
	}
}

type fakeLive struct {
	used  map[[sha256.Size]byte]time.Time
	since time.Time
	err   error
}

func (f fakeLive) LastUsed(context.Context) (map[[sha256.Size]byte]time.Time, time.Time, error) {
	return f.used, f.since, f.err
}

func (f fakeLive) Adjustments(context.Context, time.Time) ([]trail.Adjustment, error) {
	return nil, f.err
}

func TestLiveItems(t *testing.T) {
	r := run(base(), Options{Live: fakeLive{err: errors.New("connection refused")}})
	for _, id := range []string{ItemUnusedTokens, ItemBudgetAdjustments} {
		if it := item(r, id); it.Status != Warn || it.Reason != "not checked: the store could not be read: connection refused" {
			t.Errorf("%s: %+v", id, it)
		}
	}
	// Recorded for 10 days only: an unused token is not yet a candidate.
	it := item(run(base(), Options{Live: fakeLive{since: testNow.Add(-10 * day)}}), ItemUnusedTokens)
	if it.Status != Pass || !strings.Contains(it.Reason, "1 token is not used yet, and use has been recorded only since 2026-11-27") {
		t.Errorf("young recording: %+v", it)
	}
	it = item(run(base(), Options{Live: fakeLive{since: testNow.Add(-31 * day)}}), ItemUnusedTokens)
	if it.Status != Warn || !strings.Contains(it.Reason, "search-api/a (never used)") {
		t.Errorf("old recording: %+v", it)
	}
}

func TestCollector(t *testing.T) {
	p := base()
	p.Workspaces["production"].Keys[0].Created = time.Time{}
	c := NewCollector(func(ctx context.Context) *Report { return run(p, Options{}) }, time.Second)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if n := promtest.CollectAndCount(c); n != 3*len(Items()) {
		t.Errorf("%d series, want %d", n, 3*len(Items()))
	}
	want := `# HELP clade_gateway_checklist_items The access-control checklist: 1 for each item's current status (pass, warn or fail), 0 for the others.
# TYPE clade_gateway_checklist_items gauge
clade_gateway_checklist_items{item="key_rotation",status="fail"} 1
clade_gateway_checklist_items{item="key_rotation",status="pass"} 0
clade_gateway_checklist_items{item="key_rotation",status="warn"} 0
`
	if err := promtest.GatherAndCompare(reg, strings.NewReader(want+filterOthers(t, reg)), "clade_gateway_checklist_items"); err != nil {
		t.Error(err)
	}
	none := NewCollector(func(context.Context) *Report { return nil }, time.Second)
	if n := promtest.CollectAndCount(none); n != 0 {
		t.Errorf("%d series with no policy", n)
	}
}

// filterOthers returns the exposition of every series but key_rotation's,
// so the comparison pins key_rotation exactly and the rest by presence.
func filterOthers(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			lbl := map[string]string{}
			for _, l := range m.GetLabel() {
				lbl[l.GetName()] = l.GetValue()
			}
			if lbl["item"] == "key_rotation" {
				continue
			}
			b.WriteString("clade_gateway_checklist_items{item=\"" + lbl["item"] + "\",status=\"" + lbl["status"] + "\"} ")
			if m.GetGauge().GetValue() == 1 {
				b.WriteString("1\n")
			} else {
				b.WriteString("0\n")
			}
		}
	}
	return b.String()
}
