package policy

import (
	"crypto/sha256"
	"strconv"
	"strings"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

// compile checks what no single key can: that names resolve, that nothing
// is defined twice across files, that tokens are unique, and (when asked)
// that every secret can be read. It reports into probs and returns the
// policy, which is only meaningful when probs stays empty.
func compile(rp *rawPolicy, o LoadOptions, probs *problems) *Policy {
	p := &Policy{
		Workspaces:     map[string]*Workspace{},
		Teams:          map[string]*Team{},
		Services:       map[string]*Service{},
		OnStoreFailure: rp.onStoreFailure,
		UnknownTools:   rp.unknownTools,
		Pricing:        rp.pricing,
		Estimate:       Estimate{ServerToolAllowance: rp.estimate},
		Fit:            rp.fit.over(Fit{MinMaxTokens: DefaultMinMaxTokens}),
		tokens:         map[[sha256.Size]byte]*Service{},
		adminTokens:    map[[sha256.Size]byte]struct{}{},
		adminNames:     map[[sha256.Size]byte]string{},
	}
	budgets := func(rbs []rawBudget) []budget.Budget {
		out := make([]budget.Budget, 0, len(rbs))
		for _, rb := range rbs {
			b := rb.b
			b.Location = rb.loc
			if b.Location == nil {
				b.Location = rp.loc
			}
			out = append(out, b)
		}
		return out
	}

	wsAt := map[string]pos{}
	for _, rw := range rp.workspaces {
		if first, dup := wsAt[rw.name]; dup {
			probs.add(rw.at, "workspace %s also defined at %s", strconv.Quote(rw.name), first)
			continue
		}
		wsAt[rw.name] = rw.at
		ws := &Workspace{Name: rw.name, Budgets: budgets(rw.budgets), Environment: rw.env, AnthropicID: rw.anthropicID}
		for _, rk := range rw.keys {
			sec, _ := resolveSecret(rk.secret, o, probs)
			ws.Keys = append(ws.Keys, Key{Name: rk.name, Secret: sec, Created: rk.created, Env: rk.secret.env, File: rk.secret.file, AnthropicID: rk.anthropicID})
		}
		p.Workspaces[rw.name] = ws
	}

	teamAt := map[string]pos{}
	for _, rt := range rp.teams {
		if first, dup := teamAt[rt.name]; dup {
			probs.add(rt.at, "team %s also defined at %s", strconv.Quote(rt.name), first)
			continue
		}
		teamAt[rt.name] = rt.at
		p.Teams[rt.name] = &Team{Name: rt.name, Budgets: budgets(rt.budgets)}
	}
	for _, rw := range rp.workspaces {
		ws := p.Workspaces[rw.name]
		for _, r := range rw.teams {
			// A team not defined yet is allowed: the platform grants a
			// workspace to a team before the team's own file lands.
			if contains(ws.Teams, r.name) {
				probs.add(r.at, "team %s listed twice", strconv.Quote(r.name))
				continue
			}
			ws.Teams = append(ws.Teams, r.name)
		}
	}

	tokenAt := map[[sha256.Size]byte]pos{}
	claim := func(t rawToken) bool {
		if first, dup := tokenAt[t.digest]; dup {
			probs.add(t.at, "token hash also used at %s", first)
			return false
		}
		tokenAt[t.digest] = t.at
		return true
	}
	hashKey := principalHashKey(rp.principals, o, probs)
	p.HashPrincipals = rp.principals.hashValues
	svcAt := map[string]pos{}
	for _, rs := range rp.services {
		if first, dup := svcAt[rs.name]; dup {
			probs.add(rs.at, "service %s also defined at %s", strconv.Quote(rs.name), first)
			continue
		}
		svcAt[rs.name] = rs.at
		s := &Service{
			Name:           rs.name,
			Models:         rs.models,
			Budgets:        budgets(rs.budgets),
			RateLimit:      rs.rateLimit,
			OnStoreFailure: rs.onStoreFailure,
			Principals:     compilePrincipals(rs.name, rs.principals, hashKey, budgets),
		}
		if s.OnStoreFailure == "" {
			s.OnStoreFailure = p.OnStoreFailure
		}
		s.Fit = rs.fit.over(p.Fit)
		if rs.team.name != "" {
			if s.Team = p.Teams[rs.team.name]; s.Team == nil {
				probs.add(rs.team.at, "team %s is not defined", strconv.Quote(rs.team.name))
			}
		}
		if rs.workspace.name != "" {
			if s.Workspace = p.Workspaces[rs.workspace.name]; s.Workspace == nil {
				probs.add(rs.workspace.at, "workspace %s is not defined", strconv.Quote(rs.workspace.name))
			}
		}
		if s.Team != nil && s.Workspace != nil && len(s.Workspace.Teams) > 0 && !contains(s.Workspace.Teams, s.Team.Name) {
			probs.add(rs.workspace.at, "workspace %s is not open to team %s (its teams: %s)",
				strconv.Quote(s.Workspace.Name), strconv.Quote(s.Team.Name), strings.Join(s.Workspace.Teams, ", "))
		}
		for _, t := range rs.tokens {
			if claim(t) {
				p.tokens[t.digest] = s
				s.Tokens = append(s.Tokens, Token{Name: t.name, SHA256: t.digest})
			}
		}
		p.Services[rs.name] = s
	}
	for _, t := range rp.admin {
		if claim(t) {
			p.adminTokens[t.digest] = struct{}{}
			p.AdminTokens = append(p.AdminTokens, Token{Name: t.name, SHA256: t.digest})
			p.adminNames[t.digest] = adminTokenName(t)
		}
	}

	for _, rw := range rp.webhooks {
		u, ok := resolveSecret(rw.url, o, probs)
		if ok && !isHTTPURL(string(u)) {
			probs.add(rw.url.at, "%s does not hold an http(s) URL (value not shown)", secretSource(rw.url))
		}
		p.Webhooks = append(p.Webhooks, Webhook{Name: rw.name, URL: u, Format: rw.format})
	}
	if rp.reconcile != nil {
		p.Reconcile = *rp.reconcile
	}
	checkReconcileIDs(rp, probs)
	return p
}

// over returns def with the fields f sets replaced.
func (f rawFit) over(def Fit) Fit {
	if f.enabled != nil {
		def.Enabled = *f.enabled
	}
	if f.min != nil {
		def.MinMaxTokens = *f.min
	}
	return def
}
