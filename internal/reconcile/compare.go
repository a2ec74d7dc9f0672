package reconcile

import (
	"math/big"
	"sort"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/adminapi"
	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// ReportLag is how long after a day ends Anthropic's reports for it are
// taken as settled: the day is final from then on.
const ReportLag = 6 * time.Hour

// Pricer prices usage as the gateway does.
type Pricer interface {
	Cost(u meter.Usage, at time.Time) (pricing.Cost, error)
	Canonical(model string) (string, bool)
}

// Input is everything one comparison needs.
type Input struct {
	Policy *policy.Policy
	Prices Pricer
	// From and To are UTC days, To inclusive.
	From, To time.Time
	Now      time.Time
	Ledger   []budget.LedgerLine
	Usage    []adminapi.UsageRow
	Costs    []adminapi.CostRow
}

const dayFormat = "2006-01-02"

// components of the usage report, in ledger names.
var tokenKinds = []string{"input", "output", "cache_write_5m", "cache_write_1h", "cache_read", "web_search"}

// cell is one day × workspace × key × model.
type cell struct{ day, ws, key, model string }

type tally struct {
	gwTokens, anTokens map[string]int64            // by component
	gwHours, anHours   map[string]map[string]int64 // component -> hour -> tokens
	gwUSD              money.Nanos                 // ledger
	anUSD, prioUSD     money.Nanos                 // usage priced at the gateway's prices; its priority part
	known              bool                        // the key is one of the gateway's
}

func newTally() *tally {
	return &tally{gwTokens: map[string]int64{}, anTokens: map[string]int64{},
		gwHours: map[string]map[string]int64{}, anHours: map[string]map[string]int64{}}
}

func addHour(m map[string]map[string]int64, comp, hour string, n int64) {
	if m[comp] == nil {
		m[comp] = map[string]int64{}
	}
	m[comp][hour] += n
}

type dayWS struct{ day, ws string }

// Compare reconciles in and returns the report. It fails only when usage
// cannot be priced.
func Compare(in Input) (Report, error) {
	rc := in.Policy.Reconcile
	wsByID := map[string]string{}     // Anthropic workspace ID -> name
	keyByID := map[string][2]string{} // Anthropic key ID -> workspace, key name
	managed := map[string]bool{}
	unnamed := map[[2]string]bool{} // workspace, key name: a key without an ID
	for name, ws := range in.Policy.Workspaces {
		if ws.AnthropicID == "" {
			continue
		}
		wsByID[ws.AnthropicID] = name
		managed[name] = true
		for _, k := range ws.Keys {
			if k.AnthropicID != "" {
				keyByID[k.AnthropicID] = [2]string{name, k.Name}
			} else {
				unnamed[[2]string{name, k.Name}] = true
			}
		}
	}
	// A gateway key without an anthropic_id cannot be told apart from
	// other keys of its workspace: its spend and theirs are compared
	// together, under key "".
	keyOf := func(ws, key string) string {
		if unnamed[[2]string{ws, key}] {
			return ""
		}
		return key
	}
	canon := func(m string) string {
		if c, ok := in.Prices.Canonical(m); ok {
			return c
		}
		return m
	}
	from, to := in.From.UTC(), in.To.UTC().AddDate(0, 0, 1)
	inRange := func(t time.Time) bool { return !t.Before(from) && t.Before(to) }

	cells := map[cell]*tally{}
	get := func(c cell) *tally {
		t := cells[c]
		if t == nil {
			t = newTally()
			cells[c] = t
		}
		return t
	}
	gwDay := map[dayWS]money.Nanos{}
	for _, l := range in.Ledger {
		if !managed[l.Workspace] || !inRange(l.Hour) {
			continue
		}
		day, hour := l.Hour.UTC().Format(dayFormat), l.Hour.UTC().Format("15")
		gwDay[dayWS{day, l.Workspace}] += l.Nanos
		t := get(cell{day, l.Workspace, keyOf(l.Workspace, l.Key), canon(l.Model)})
		t.known = true
		t.gwUSD += l.Nanos
		if l.Component != "estimate" {
			t.gwTokens[l.Component] += l.Tokens
			addHour(t.gwHours, l.Component, hour, l.Tokens)
		}
	}

	// expected is Anthropic's token usage priced at the gateway's prices,
	// Priority Tier left out (it is not in the cost report).
	expected := map[cell]money.Nanos{} // key ""
	for _, u := range in.Usage {
		if !inRange(u.Hour) {
			continue
		}
		ws, key, known := "", u.APIKeyID, false
		if k, ok := keyByID[u.APIKeyID]; ok {
			ws, key, known = k[0], k[1], true
		} else if name, ok := wsByID[u.WorkspaceID]; ok {
			ws = name
			if hasUnnamed(unnamed, name) {
				key = ""
			}
		} else {
			continue // a workspace the gateway does not manage
		}
		cost, err := in.Prices.Cost(meter.Usage{Model: u.Model, InputTokens: u.UncachedInput,
			CacheCreationInputTokens: u.CacheWrite5m + u.CacheWrite1h, CacheCreationSplit: true,
			CacheWrite5mTokens: u.CacheWrite5m, CacheWrite1hTokens: u.CacheWrite1h, CacheReadInputTokens: u.CacheRead,
			OutputTokens: u.Output, WebSearchRequests: u.WebSearch, ServiceTier: u.ServiceTier,
			InferenceGeo: u.InferenceGeo, Speed: u.Speed}, u.Hour)
		if err != nil {
			return Report{}, err
		}
		day, hour, model := u.Hour.UTC().Format(dayFormat), u.Hour.UTC().Format("15"), canon(u.Model)
		t := get(cell{day, ws, key, model})
		t.known = t.known || known
		t.anUSD += cost.Total
		if u.ServiceTier == "priority" {
			t.prioUSD += cost.Total
		} else {
			expected[cell{day, ws, "", model}] += cost.Total
		}
		for i, n := range []int64{u.UncachedInput, u.Output, u.CacheWrite5m, u.CacheWrite1h, u.CacheRead, u.WebSearch} {
			t.anTokens[tokenKinds[i]] += n
			addHour(t.anHours, tokenKinds[i], hour, n)
		}
	}

	anDay := map[dayWS]money.Nanos{}
	billed := map[cell]money.Nanos{} // token and web search costs per day × workspace × model
	var findings []Finding
	for _, c := range in.Costs {
		ws, ok := wsByID[c.WorkspaceID]
		if !ok || !inRange(c.Day) {
			continue
		}
		day := c.Day.UTC().Format(dayFormat)
		anDay[dayWS{day, ws}] += c.Amount
		switch c.CostType {
		case "tokens", "web_search":
			billed[cell{day, ws, "", canon(c.Model)}] += c.Amount
		case "code_execution":
			findings = append(findings, Finding{Kind: NotMeteredByDesign, Date: day, Workspace: ws, Model: c.Model,
				AnthropicUSD: USD(c.Amount), DriftUSD: USD(c.Amount)})
		}
	}

	// Token findings, per day × workspace × key × model.
	for c, t := range cells {
		if t.prioUSD != 0 {
			findings = append(findings, Finding{Kind: NotMeteredByDesign, Date: c.day, Workspace: c.ws, Key: c.key,
				Model: c.model, GatewayUSD: USD(t.prioUSD), DriftUSD: USD(-t.prioUSD)})
		}
		// Judged per day: a request counted in the next hour by one side
		// (a boundary crossed in flight) is no finding.
		if sameTokens(t) {
			continue
		}
		hours := differingHours(t)
		drift := t.anUSD - t.gwUSD
		kind := Unmetered
		switch {
		case !t.known:
		case drift < 0:
			kind = UnseenByAnthropic
		case drift == 0:
			continue
		}
		findings = append(findings, Finding{Kind: kind, Date: c.day, Workspace: c.ws, Key: c.key, Model: c.model,
			GatewayUSD: USD(t.gwUSD), AnthropicUSD: USD(t.anUSD), DriftUSD: USD(drift), Hours: hours})
	}
	// Price drift, per day × workspace × model.
	for c, want := range expected {
		got := billed[c]
		if d := got - want; exceeds(d, got, rc) {
			findings = append(findings, Finding{Kind: PriceDrift, Date: c.day, Workspace: c.ws, Model: c.model,
				GatewayUSD: USD(want), AnthropicUSD: USD(got), DriftUSD: USD(d)})
		}
	}
	for c, got := range billed {
		if _, ok := expected[c]; !ok && exceeds(got, got, rc) {
			findings = append(findings, Finding{Kind: PriceDrift, Date: c.day, Workspace: c.ws, Model: c.model,
				AnthropicUSD: USD(got), DriftUSD: USD(got)})
		}
	}

	rep := Report{From: from.Format(dayFormat), To: in.To.UTC().Format(dayFormat), Days: []Day{}}
	explained := map[dayWS]money.Nanos{}
	for _, f := range findings {
		explained[dayWS{f.Date, f.Workspace}] += money.Nanos(f.DriftUSD)
	}
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		day := d.Format(dayFormat)
		final := !in.Now.Before(d.AddDate(0, 0, 1).Add(ReportLag))
		for _, ws := range sortedKeys(managed) {
			k := dayWS{day, ws}
			g, a := gwDay[k], anDay[k]
			rep.Days = append(rep.Days, Day{Date: day, Workspace: ws, GatewayUSD: USD(g), AnthropicUSD: USD(a),
				DriftUSD: USD(a - g), Final: final})
			if rest := a - g - explained[k]; exceeds(rest, a, rc) {
				findings = append(findings, Finding{Kind: Unexplained, Date: day, Workspace: ws,
					GatewayUSD: USD(g), AnthropicUSD: USD(a), DriftUSD: USD(rest)})
			}
		}
	}
	finals := map[string]bool{}
	for _, d := range rep.Days {
		finals[d.Date] = d.Final
	}
	for i := range findings {
		f := &findings[i]
		f.Final = finals[f.Date]
		f.Exceeds = exceeds(money.Nanos(f.DriftUSD), money.Nanos(f.AnthropicUSD), rc)
	}
	explainDiscount(findings, in.Policy.Pricing.Discount)
	sort.SliceStable(findings, func(i, j int) bool {
		a, b := findings[i], findings[j]
		if a.Date != b.Date {
			return a.Date < b.Date
		}
		if a.Workspace != b.Workspace {
			return a.Workspace < b.Workspace
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		return a.Model < b.Model
	})
	rep.Findings = append([]Finding{}, findings...)
	return rep, nil
}

// exceeds reports whether drift is beyond the tolerance: more than both
// tolerance_usd and tolerance_ratio × Anthropic's figure.
func exceeds(drift, anthropic money.Nanos, rc policy.Reconcile) bool {
	if drift < 0 {
		drift = -drift
	}
	if anthropic < 0 {
		anthropic = -anthropic
	}
	tol := rc.ToleranceUSD
	if r := mulRatio(anthropic, rc.ToleranceRatio); r > tol {
		tol = r
	}
	return drift > tol
}

// mulRatio is a × r / 1e9 for a ratio r in billionths, without overflow
// for amounts up to a few billion dollars.
func mulRatio(a, r money.Nanos) money.Nanos {
	whole, frac := a/money.PerUSD, a%money.PerUSD
	return whole*r + frac*r/money.PerUSD
}

func hasUnnamed(unnamed map[[2]string]bool, ws string) bool {
	for k := range unnamed {
		if k[0] == ws {
			return true
		}
	}
	return false
}

func sameTokens(t *tally) bool {
	for _, k := range tokenKinds {
		if t.gwTokens[k] != t.anTokens[k] {
			return false
		}
	}
	return true
}

// differingHours lists the hours (UTC "15") whose token counts differ.
func differingHours(t *tally) []string {
	set := map[string]bool{}
	for _, k := range tokenKinds {
		for h, n := range t.gwHours[k] {
			if t.anHours[k][h] != n {
				set[h] = true
			}
		}
		for h, n := range t.anHours[k] {
			if t.gwHours[k][h] != n {
				set[h] = true
			}
		}
	}
	return sortedKeys(set)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// explainDiscount names the discount that explains price drift when every
// price drift finding is off by the same factor (within 0.1%).
func explainDiscount(fs []Finding, current money.Nanos) {
	if current == 0 {
		current = money.PerUSD
	}
	var idx []int
	for i, f := range fs {
		if f.Kind == PriceDrift && f.GatewayUSD > 0 && f.AnthropicUSD > 0 {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return
	}
	// Each factor in billionths: anthropic / gateway × current.
	factor := func(f Finding) money.Nanos {
		n := new(big.Int).Mul(big.NewInt(int64(f.AnthropicUSD)), big.NewInt(int64(current)))
		return money.Nanos(n.Quo(n, big.NewInt(int64(f.GatewayUSD))).Int64())
	}
	first := factor(fs[idx[0]])
	for _, i := range idx[1:] {
		if d := factor(fs[i]) - first; d > first/1000 || -d > first/1000 {
			return
		}
	}
	s := ratio(first, money.PerUSD)
	for _, i := range idx {
		fs[i].Discount = s
	}
}
