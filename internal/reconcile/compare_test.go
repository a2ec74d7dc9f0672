package reconcile

import (
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/adminapi"
	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

var day0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func testPolicy() *policy.Policy {
	return &policy.Policy{
		Workspaces: map[string]*policy.Workspace{
			"prod": {Name: "prod", AnthropicID: "wrkspc_01P", Keys: []policy.Key{{Name: "main", AnthropicID: "apikey_01M"}}},
			"lab":  {Name: "lab", Keys: []policy.Key{{Name: "x"}}}, // no ID: not compared
		},
		Reconcile: policy.Reconcile{ToleranceUSD: policy.DefaultToleranceUSD},
	}
}

func table(t *testing.T) *pricing.Table {
	t.Helper()
	p, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// line is a ledger line for 1M input tokens of Sonnet 4.6 ($3).
func line(hour time.Time, tokens int64, usd money.Nanos) budget.LedgerLine {
	return budget.LedgerLine{Hour: hour, Workspace: "prod", Key: "main", Model: "claude-sonnet-4-6", Component: "input", Tokens: tokens, Nanos: usd}
}

func usage(hour time.Time, tokens int64, tier string) adminapi.UsageRow {
	return adminapi.UsageRow{Hour: hour, APIKeyID: "apikey_01M", WorkspaceID: "wrkspc_01P", Model: "claude-sonnet-4-6",
		ServiceTier: tier, UncachedInput: tokens}
}

func cost(amt money.Nanos) adminapi.CostRow {
	return adminapi.CostRow{Day: day0, WorkspaceID: "wrkspc_01P", CostType: "tokens", Model: "claude-sonnet-4-6", Amount: amt}
}

func TestCompare(t *testing.T) {
	h := day0.Add(10 * time.Hour)
	now := day0.AddDate(0, 0, 2)
	for _, c := range []struct {
		name   string
		ledger []budget.LedgerLine
		usage  []adminapi.UsageRow
		costs  []adminapi.CostRow
		disc   money.Nanos
		want   []Finding
		failed bool
	}{
		{name: "match", ledger: []budget.LedgerLine{line(h, 1e6, 3e9)}, usage: []adminapi.UsageRow{usage(h, 1e6, "standard")},
			costs: []adminapi.CostRow{cost(3e9)}},
		{name: "an hour boundary crossed in flight is no finding",
			ledger: []budget.LedgerLine{line(h, 1e6, 3e9)}, usage: []adminapi.UsageRow{usage(h.Add(time.Hour), 1e6, "standard")},
			costs: []adminapi.CostRow{cost(3e9)}},
		{name: "unseen by Anthropic", ledger: []budget.LedgerLine{line(h, 2e6, 6e9)}, usage: []adminapi.UsageRow{usage(h, 1e6, "standard")},
			costs: []adminapi.CostRow{cost(3e9)}, failed: true,
			want: []Finding{{Kind: UnseenByAnthropic, Key: "main", Model: "claude-sonnet-4-6", GatewayUSD: 6e9, AnthropicUSD: 3e9, DriftUSD: -3e9}}},
		{name: "a uniform discount explains price drift", ledger: []budget.LedgerLine{line(h, 1e6, 3e9)},
			usage: []adminapi.UsageRow{usage(h, 1e6, "standard")}, costs: []adminapi.CostRow{cost(2.7e9)}, failed: true,
			want: []Finding{{Kind: PriceDrift, Model: "claude-sonnet-4-6", GatewayUSD: 3e9, AnthropicUSD: 2.7e9, DriftUSD: -0.3e9, Discount: "0.9"}}},
		{name: "Priority Tier is not metered by design", ledger: []budget.LedgerLine{line(h, 1e6, 3e9)},
			usage: []adminapi.UsageRow{usage(h, 1e6, "priority")},
			want:  []Finding{{Kind: NotMeteredByDesign, Key: "main", Model: "claude-sonnet-4-6", GatewayUSD: 3e9, DriftUSD: -3e9}}},
		{name: "a dollar difference nobody explains", ledger: []budget.LedgerLine{line(h, 1e6, 3e9)},
			usage: []adminapi.UsageRow{usage(h, 1e6, "standard")},
			costs: []adminapi.CostRow{cost(3e9), {Day: day0, WorkspaceID: "wrkspc_01P", CostType: "storage", Amount: 5e8}}, failed: true,
			want: []Finding{{Kind: Unexplained, GatewayUSD: 3e9, AnthropicUSD: 3.5e9, DriftUSD: 5e8}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			pol := testPolicy()
			pol.Pricing.Discount = c.disc
			rep, err := Compare(Input{Policy: pol, Prices: table(t), From: day0, To: day0, Now: now, Ledger: c.ledger, Usage: c.usage, Costs: c.costs})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Days) != 1 || rep.Days[0].Workspace != "prod" || !rep.Days[0].Final {
				t.Errorf("days %+v: want prod only, final", rep.Days)
			}
			if len(rep.Findings) != len(c.want) {
				t.Fatalf("findings %+v, want %+v", rep.Findings, c.want)
			}
			for i, w := range c.want {
				g := rep.Findings[i]
				if g.Kind != w.Kind || g.Key != w.Key || g.Model != w.Model || g.GatewayUSD != w.GatewayUSD ||
					g.AnthropicUSD != w.AnthropicUSD || g.DriftUSD != w.DriftUSD || g.Discount != w.Discount {
					t.Errorf("finding %+v, want %+v", g, w)
				}
			}
			if rep.Failed() != c.failed {
				t.Errorf("failed %t, want %t", rep.Failed(), c.failed)
			}
		})
	}
}

func TestKeyWithoutIDIsComparedPerWorkspace(t *testing.T) {
	h := day0.Add(10 * time.Hour)
	pol := testPolicy()
	pol.Workspaces["prod"].Keys[0].AnthropicID = ""
	u := usage(h, 1e6, "standard")
	u.APIKeyID = "apikey_01Unlisted"
	console := usage(h, 1e6, "standard")
	console.APIKeyID = ""
	rep, err := Compare(Input{Policy: pol, Prices: table(t), From: day0, To: day0, Now: day0.AddDate(0, 0, 2),
		Ledger: []budget.LedgerLine{line(h, 1e6, 3e9)}, Usage: []adminapi.UsageRow{u, console}, Costs: []adminapi.CostRow{cost(6e9)}})
	if err != nil {
		t.Fatal(err)
	}
	// The gateway's key matches one of the two; the other is unmetered.
	if len(rep.Findings) != 1 || rep.Findings[0].Kind != Unmetered || rep.Findings[0].Key != "" || rep.Findings[0].DriftUSD != 3e9 {
		t.Errorf("findings %+v, want one unmetered 3 USD under key \"\"", rep.Findings)
	}
}

func TestOpenDayIsNotFinal(t *testing.T) {
	h := day0.Add(23 * time.Hour)
	rep, err := Compare(Input{Policy: testPolicy(), Prices: table(t), From: day0, To: day0, Now: day0.Add(25 * time.Hour),
		Ledger: []budget.LedgerLine{line(h, 2e6, 6e9)}, Usage: []adminapi.UsageRow{usage(h, 1e6, "standard")}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Days[0].Final || rep.Failed() {
		t.Errorf("a day an hour after its end: final %t, failed %t; want neither (reports lag)", rep.Days[0].Final, rep.Failed())
	}
}

func TestTolerance(t *testing.T) {
	rc := policy.Reconcile{ToleranceUSD: 1e7, ToleranceRatio: 1e7} // a cent, or 1%
	for _, c := range []struct {
		drift, anthropic money.Nanos
		want             bool
	}{{1e7, 0, false}, {1e7 + 1, 0, true}, {5e8, 100e9, false}, {-1e9 - 1, 100e9, true}} {
		if got := exceeds(c.drift, c.anthropic, rc); got != c.want {
			t.Errorf("exceeds(%d, %d) = %t", c.drift, c.anthropic, got)
		}
	}
}
