package spend

import (
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// The families count each record's spend and tokens under its service,
// workspace and model, and export a series only once it has counted
// something.
func TestRecorderCountsSpendAndTokens(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := New(reg, nil, nil)
	rec := func(service, model string, input, output, cacheRead int64, in, out, read, total money.Nanos) Record {
		var c pricing.Cost
		c.Tokens[pricing.Input], c.Tokens[pricing.Output], c.Tokens[pricing.CacheRead] = input, output, cacheRead
		c.Components[pricing.Input], c.Components[pricing.Output], c.Components[pricing.CacheRead] = in, out, read
		c.Total = total
		return Record{Service: service, Team: "search", Workspace: "prod", Model: model, ModelLabel: model, Cost: c}
	}
	r.Add(rec("recommendation", "claude-sonnet-4-6", 1200, 300, 0, 3_600_000, 4_500_000, 0, 8_100_000))
	r.Add(rec("recommendation", "claude-sonnet-4-6", 100, 10, 50, 300_000, 150_000, 15_000, 465_000))
	// Charged by estimate: no breakdown, the total counts as "estimate".
	r.Add(rec("indexer", "other", 0, 0, 0, 0, 0, 0, 2_000_000))

	for _, tc := range []struct {
		got, want float64
		what      string
	}{
		{r.cost.Value("recommendation", "search", "prod", "claude-sonnet-4-6"), 0.008565, "cost"},
		{r.cost.Value("indexer", "search", "prod", "other"), 0.002, "estimated cost"},
		{r.componentCost.Value("prod", "claude-sonnet-4-6", "input"), 0.0039, "input cost"},
		{r.componentCost.Value("prod", "claude-sonnet-4-6", "output"), 0.00465, "output cost"},
		{r.componentCost.Value("prod", "claude-sonnet-4-6", "cache_read"), 0.000015, "cache read cost"},
		{r.componentCost.Value("prod", "other", "estimate"), 0.002, "estimate"},
		{r.tokens.Value("prod", "claude-sonnet-4-6", "input"), 1300, "input tokens"},
		{r.tokens.Value("prod", "claude-sonnet-4-6", "cache_read"), 50, "cache read tokens"},
		{r.serviceTokens.Value("recommendation", "search", "prod", "input"), 1350, "service input tokens"},
		{r.serviceTokens.Value("recommendation", "search", "prod", "output"), 310, "service output tokens"},
	} {
		if d := tc.got - tc.want; d > 1e-12 || d < -1e-12 {
			t.Errorf("%s: %v, want %v", tc.what, tc.got, tc.want)
		}
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var series []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var lv []string
			for _, l := range m.GetLabel() {
				lv = append(lv, l.GetValue())
			}
			series = append(series, mf.GetName()+"{"+strings.Join(lv, ",")+"}")
		}
	}
	sort.Strings(series)
	want := []string{
		"clade_gateway_component_cost_usd_total{cache_read,claude-sonnet-4-6,prod}",
		"clade_gateway_component_cost_usd_total{estimate,other,prod}",
		"clade_gateway_component_cost_usd_total{input,claude-sonnet-4-6,prod}",
		"clade_gateway_component_cost_usd_total{output,claude-sonnet-4-6,prod}",
		"clade_gateway_cost_usd_total{claude-sonnet-4-6,recommendation,search,prod}",
		"clade_gateway_cost_usd_total{other,indexer,search,prod}",
		"clade_gateway_service_tokens_total{input,recommendation,search,prod}",
		"clade_gateway_service_tokens_total{output,recommendation,search,prod}",
		"clade_gateway_tokens_total{cache_read,claude-sonnet-4-6,prod}",
		"clade_gateway_tokens_total{input,claude-sonnet-4-6,prod}",
		"clade_gateway_tokens_total{output,claude-sonnet-4-6,prod}",
	}
	if strings.Join(series, "\n") != strings.Join(want, "\n") {
		t.Errorf("exported series:\n%s\nwant:\n%s", strings.Join(series, "\n"), strings.Join(want, "\n"))
	}
}
