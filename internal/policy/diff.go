package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

// Diff describes what changes from old to new in sentences a reviewer can
// read in a pull request, sorted. It names keys and tokens by label and
// hash prefix only: secrets never appear. A nil policy is an empty one.
func Diff(old, new *Policy) []string {
	if old == nil {
		old = emptyPolicy()
	}
	if new == nil {
		new = emptyPolicy()
	}
	d := &differ{}
	if old.OnStoreFailure != new.OnStoreFailure {
		d.add("on_store_failure changed from %s to %s", old.OnStoreFailure, new.OnStoreFailure)
	}
	if old.UnknownTools != new.UnknownTools {
		d.add("unknown_tools changed from %s to %s", old.UnknownTools, new.UnknownTools)
	}
	if a, b := old.Estimate.ServerToolAllowance, new.Estimate.ServerToolAllowance; a != b {
		d.add("estimate: server tool allowance changed from %s to %s USD", a, b)
	}
	if old.Fit != new.Fit {
		d.add("fit_max_tokens changed from %s to %s", fitText(old.Fit), fitText(new.Fit))
	}
	d.workspaces(old, new)
	d.teams(old, new)
	d.services(old, new)
	d.pricing(old.Pricing, new.Pricing)
	d.tokens("admin", digests(old.adminTokens), digests(new.adminTokens))
	d.webhooks(old.Webhooks, new.Webhooks)
	slices.Sort(d.out)
	return d.out
}

// emptyPolicy is what a policy with no keys at all compiles to, so that a
// diff against nothing lists only what the new policy sets.
func emptyPolicy() *Policy {
	return &Policy{
		OnStoreFailure: FailReject,
		UnknownTools:   UnknownToolsReject,
		Pricing:        Pricing{UnknownModel: UnknownReject},
		Estimate:       Estimate{ServerToolAllowance: defaultServerToolAllowance},
		Fit:            Fit{MinMaxTokens: DefaultMinMaxTokens},
	}
}

func fitText(f Fit) string {
	return fmt.Sprintf("%t (min_max_tokens %d)", f.Enabled, f.MinMaxTokens)
}

type differ struct{ out []string }

func (d *differ) add(format string, args ...any) { d.out = append(d.out, fmt.Sprintf(format, args...)) }

// both calls f for every name in either map, with nil for the side that
// lacks it.
func both[V any](a, b map[string]*V, f func(name string, a, b *V)) {
	names := slices.Sorted(maps.Keys(a))
	for n := range b {
		if _, ok := a[n]; !ok {
			names = append(names, n)
		}
	}
	for _, n := range names {
		f(n, a[n], b[n])
	}
}

func (d *differ) workspaces(old, new *Policy) {
	both(old.Workspaces, new.Workspaces, func(name string, a, b *Workspace) {
		who := "workspace " + strconv.Quote(name)
		switch {
		case b == nil:
			d.add("%s removed", who)
			return
		case a == nil:
			d.add("%s added", who)
			if len(b.Teams) > 0 {
				d.add("%s: teams allowed: %s", who, list(b.Teams, ""))
			}
			if b.Environment != "" {
				d.add("%s: environment %s", who, b.Environment)
			}
			a = &Workspace{Teams: b.Teams, Environment: b.Environment}
		}
		if a.Environment != b.Environment {
			d.add("%s: environment changed from %s to %s", who, orNone(string(a.Environment)), orNone(string(b.Environment)))
		}
		ak, bk := keyNames(a.Keys), keyNames(b.Keys)
		for _, k := range bk {
			if !contains(ak, k) {
				d.add("%s: key %s added", who, strconv.Quote(k))
			}
		}
		for _, k := range ak {
			if !contains(bk, k) {
				d.add("%s: key %s removed", who, strconv.Quote(k))
			}
		}
		if len(ak) > 0 && len(bk) > 0 && ak[0] != bk[0] {
			d.add("%s: key in use changed from %s to %s", who, strconv.Quote(ak[0]), strconv.Quote(bk[0]))
		}
		if !slices.Equal(sorted(a.Teams), sorted(b.Teams)) {
			d.add("%s: teams allowed changed from %s to %s", who, list(a.Teams, "all teams"), list(b.Teams, "all teams"))
		}
		d.budgets(who, a.Budgets, b.Budgets)
	})
}

func (d *differ) teams(old, new *Policy) {
	both(old.Teams, new.Teams, func(name string, a, b *Team) {
		who := "team " + strconv.Quote(name)
		switch {
		case b == nil:
			d.add("%s removed", who)
			return
		case a == nil:
			d.add("%s added", who)
			a = &Team{}
		}
		d.budgets(who, a.Budgets, b.Budgets)
	})
}

func (d *differ) services(old, new *Policy) {
	oldTok, newTok := serviceTokens(old), serviceTokens(new)
	both(old.Services, new.Services, func(name string, a, b *Service) {
		who := "service " + strconv.Quote(name)
		switch {
		case b == nil:
			d.add("%s removed (its tokens are revoked)", who)
			return
		case a == nil:
			d.add("%s added (team %s, workspace %s)", who, b.Team.Name, b.Workspace.Name)
			if len(b.Models) > 0 {
				d.add("%s: models allowed: %s", who, list(b.Models, ""))
			}
			if b.RateLimit != nil {
				d.add("%s: rate limit %s", who, rateLimit(b.RateLimit))
			}
			if b.OnStoreFailure != new.OnStoreFailure {
				d.add("%s: on_store_failure %s", who, b.OnStoreFailure)
			}
			if b.Fit != new.Fit {
				d.add("%s: fit_max_tokens %s", who, fitText(b.Fit))
			}
		default:
			if a.Team.Name != b.Team.Name {
				d.add("%s: team changed from %s to %s", who, a.Team.Name, b.Team.Name)
			}
			if a.Workspace.Name != b.Workspace.Name {
				d.add("%s: workspace changed from %s to %s", who, a.Workspace.Name, b.Workspace.Name)
			}
			if !slices.Equal(a.Models, b.Models) {
				d.add("%s: models allowed changed from %s to %s", who, list(a.Models, "all models"), list(b.Models, "all models"))
			}
			if ra, rb := rateLimit(a.RateLimit), rateLimit(b.RateLimit); ra != rb {
				d.add("%s: rate limit changed from %s to %s", who, ra, rb)
			}
			if a.OnStoreFailure != b.OnStoreFailure {
				d.add("%s: on_store_failure changed from %s to %s", who, a.OnStoreFailure, b.OnStoreFailure)
			}
			if a.Fit != b.Fit {
				d.add("%s: fit_max_tokens changed from %s to %s", who, fitText(a.Fit), fitText(b.Fit))
			}
		}
		d.tokens(who, oldTok[name], newTok[name])
		var ab []budget.Budget
		if a != nil {
			ab = a.Budgets
		}
		d.budgets(who, ab, b.Budgets)
		var ap []*Principal
		if a != nil {
			ap = a.Principals
		}
		d.principals(who, ap, b.Principals)
	})
}

// tokens reports token hashes added and revoked, by their first 8 hex
// digits: enough to find the line in the file, useless to an attacker.
func (d *differ) tokens(who string, a, b []string) {
	for _, t := range b {
		if !contains(a, t) {
			d.add("%s: token %s… added", who, t[:8])
		}
	}
	for _, t := range a {
		if !contains(b, t) {
			d.add("%s: token %s… revoked", who, t[:8])
		}
	}
}

func (d *differ) budgets(who string, a, b []budget.Budget) {
	byID := func(bs []budget.Budget) map[string]*budget.Budget {
		m := make(map[string]*budget.Budget, len(bs))
		for i := range bs {
			m[bs[i].ID] = &bs[i]
		}
		return m
	}
	both(byID(a), byID(b), func(id string, x, y *budget.Budget) {
		q := strconv.Quote(id)
		switch {
		case y == nil:
			d.add("%s: budget %s (%s) removed", who, q, x.Period)
			return
		case x == nil:
			s := fmt.Sprintf("%s: budget %s (%s) added: %s USD", who, q, y.Period, y.Limit)
			if !y.Enforce {
				s += ", not enforced (dry run)"
			}
			d.out = append(d.out, s)
			return
		}
		if x.Period != y.Period {
			d.add("%s: budget %s period changed from %s to %s", who, q, x.Period, y.Period)
		}
		switch {
		case y.Limit > x.Limit:
			d.add("%s: budget %s (%s) raised from %s to %s USD", who, q, y.Period, x.Limit, y.Limit)
		case y.Limit < x.Limit:
			d.add("%s: budget %s (%s) lowered from %s to %s USD", who, q, y.Period, x.Limit, y.Limit)
		}
		switch {
		case x.Enforce && !y.Enforce:
			d.add("%s: budget %s (%s) no longer enforced (dry run)", who, q, y.Period)
		case !x.Enforce && y.Enforce:
			d.add("%s: budget %s (%s) now enforced", who, q, y.Period)
		}
		if !slices.Equal(x.AlertAt, y.AlertAt) {
			d.add("%s: budget %s (%s) alerts changed from %s to %s", who, q, y.Period, fractions(x.AlertAt), fractions(y.AlertAt))
		}
		if zx, zy := zone(x), zone(y); zx != zy {
			d.add("%s: budget %s (%s) time zone changed from %s to %s", who, q, y.Period, zx, zy)
		}
	})
}

func (d *differ) pricing(a, b Pricing) {
	if a.UnknownModel != b.UnknownModel {
		d.add("pricing: unknown_model changed from %s to %s", a.UnknownModel, b.UnknownModel)
	}
	names := slices.Sorted(maps.Keys(a.Models))
	for n := range b.Models {
		if _, ok := a.Models[n]; !ok {
			names = append(names, n)
		}
	}
	for _, n := range names {
		x, inA := a.Models[n]
		y, inB := b.Models[n]
		q := strconv.Quote(n)
		switch {
		case !inB:
			d.add("pricing: model %s removed", q)
		case !inA:
			d.add("pricing: model %s added (%s)", q, prices(y))
		case x != y:
			d.add("pricing: model %s changed from (%s) to (%s)", q, prices(x), prices(y))
		}
	}
}

func (d *differ) webhooks(a, b []Webhook) {
	byName := func(ws []Webhook) map[string]*Webhook {
		m := make(map[string]*Webhook, len(ws))
		for i := range ws {
			m[ws[i].Name] = &ws[i]
		}
		return m
	}
	both(byName(a), byName(b), func(name string, x, y *Webhook) {
		who := "webhook " + strconv.Quote(name)
		switch {
		case y == nil:
			d.add("%s removed", who)
		case x == nil:
			d.add("%s added (format %s)", who, y.Format)
		default:
			if x.Format != y.Format {
				d.add("%s: format changed from %s to %s", who, x.Format, y.Format)
			}
			// Compared, never shown: the URL embeds a credential.
			if x.URL != "" && y.URL != "" && x.URL != y.URL {
				d.add("%s: URL changed", who)
			}
		}
	})
}

func keyNames(ks []Key) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.Name
	}
	return out
}

func serviceTokens(p *Policy) map[string][]string {
	out := map[string][]string{}
	for dg, s := range p.tokens {
		out[s.Name] = append(out[s.Name], hex.EncodeToString(dg[:]))
	}
	for _, ts := range out {
		slices.Sort(ts)
	}
	return out
}

func digests(m map[[sha256.Size]byte]struct{}) []string {
	out := make([]string, 0, len(m))
	for dg := range m {
		out = append(out, hex.EncodeToString(dg[:]))
	}
	slices.Sort(out)
	return out
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

func list(s []string, empty string) string {
	if len(s) == 0 {
		return empty
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func fractions(fs []float64) string {
	if len(fs) == 0 {
		return "none"
	}
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = strconv.FormatFloat(f, 'f', -1, 64)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func rateLimit(r *RateLimit) string {
	if r == nil {
		return "none"
	}
	return fmt.Sprintf("%s/s (burst %d)", strconv.FormatFloat(r.RequestsPerSecond, 'f', -1, 64), r.Burst)
}

func zone(b *budget.Budget) string {
	if b.Location == nil {
		return "UTC"
	}
	return b.Location.String()
}

func prices(p ModelPrice) string {
	return fmt.Sprintf("input %s, output %s, cache write 5m %s, cache write 1h %s, cache read %s USD/MTok",
		p.Input, p.Output, p.CacheWrite5m, p.CacheWrite1h, p.CacheRead)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
