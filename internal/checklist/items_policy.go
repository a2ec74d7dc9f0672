package checklist

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

func (e *eval) workspaceEnvironment() Item {
	var f findings
	users := map[string][]string{} // workspace -> services using it
	for _, name := range sortedKeys(e.p.Services) {
		if s := e.p.Services[name]; s.Workspace != nil {
			users[s.Workspace.Name] = append(users[s.Workspace.Name], name)
		}
	}
	for _, name := range sortedKeys(e.p.Workspaces) {
		ws := e.p.Workspaces[name]
		// What the workspace serves, by what it declares and by the names
		// of its keys, their sources and its services.
		seen := map[policy.Environment][]string{}
		note := func(env policy.Environment, what string) {
			if env != "" {
				seen[env] = append(seen[env], what)
			}
		}
		if ws.Environment != "" {
			note(ws.Environment, "declared")
		} else {
			note(envOf(name), "its name")
		}
		for _, k := range ws.Keys {
			note(envOf(k.Name), "key "+k.Name)
			if k.Env != "" {
				note(envOf(k.Env), "variable "+k.Env)
			}
			if k.File != "" {
				note(envOf(k.File), "file "+k.File)
			}
		}
		for _, s := range users[name] {
			note(envOf(s), "service "+s)
		}
		prod, stg, dev := seen[policy.EnvProduction], seen[policy.EnvStaging], seen[policy.EnvDevelopment]
		switch {
		case len(prod) > 0 && len(dev) > 0:
			f.add(Fail, name+" (production and development)", "workspace %s holds production (%s) and development (%s)", name, strings.Join(prod, ", "), strings.Join(dev, ", "))
		case len(prod) > 0 && len(stg) > 0:
			f.add(Fail, name+" (production and staging)", "workspace %s holds production (%s) and staging (%s)", name, strings.Join(prod, ", "), strings.Join(stg, ", "))
		case len(stg) > 0 && len(dev) > 0:
			f.add(Warn, name+" (staging and development)", "workspace %s holds staging (%s) and development (%s)", name, strings.Join(stg, ", "), strings.Join(dev, ", "))
		}
		if ws.Environment == "" {
			f.add(Warn, name+" (no environment)", "workspace %s declares no environment", name)
		}
	}
	return f.item(HeadEnvironments, ItemWorkspaceEnvironment,
		fmt.Sprintf("every workspace declares one environment and holds only that one (%s)", plural(len(e.p.Workspaces), "workspace", "workspaces")),
		f.reason("production shares a workspace with another environment", "workspaces with no declared environment, or staging mixed with development"),
		"give production its own workspace and keys, move other services and keys to a staging or development workspace, and declare environment: on every workspace")
}

func (e *eval) workspaceKeys() Item {
	var f findings
	type use struct{ ws, key, src string }
	bySource := map[string][]use{}
	bySecret := map[policy.Secret][]use{}
	for _, name := range sortedKeys(e.p.Workspaces) {
		for _, k := range e.p.Workspaces[name].Keys {
			src := "variable " + k.Env
			if k.File != "" {
				src = "file " + k.File
			}
			u := use{name, k.Name, src}
			bySource[src] = append(bySource[src], u)
			if k.Secret != "" {
				bySecret[k.Secret] = append(bySecret[k.Secret], u)
			}
		}
	}
	shared := func(uses []use) []string {
		var wss, keys []string
		for _, u := range uses {
			if !slices.Contains(wss, u.ws) {
				wss = append(wss, u.ws)
			}
			keys = append(keys, u.ws+"/"+u.key)
		}
		if len(wss) < 2 {
			return nil
		}
		return keys
	}
	for _, src := range sortedKeys(bySource) {
		if keys := shared(bySource[src]); keys != nil {
			f.add(Fail, src, "%s is the key of %s", src, strings.Join(keys, ", "))
		}
	}
	// With secrets resolved (serve), two sources holding one key are
	// caught too. The secret itself is never shown.
	var sameValue []string
	for _, uses := range bySecret {
		srcs := map[string]bool{}
		for _, u := range uses {
			srcs[u.src] = true
		}
		if keys := shared(uses); keys != nil && len(srcs) > 1 {
			sameValue = append(sameValue, strings.Join(keys, " = "))
		}
	}
	slices.Sort(sameValue)
	for _, keys := range sameValue {
		f.add(Fail, keys, "%s hold the same key, read from different variables or files", keys)
	}
	return f.item(HeadEnvironments, ItemWorkspaceKeys, "no key variable, file or value is shared between workspaces",
		f.reason("one key serves more than one workspace", ""),
		"create a separate key in the Anthropic Console for each workspace and point each workspace at its own variable or file")
}

func (e *eval) keyNames() Item {
	var f findings
	n := 0
	for _, name := range sortedKeys(e.p.Workspaces) {
		for _, k := range e.p.Workspaces[name].Keys {
			n++
			if !saysWhatItServes(k.Name, name) {
				f.add(Warn, name+"/"+k.Name, "key %s of workspace %s does not say what it serves", k.Name, name)
			}
		}
	}
	return f.item(HeadKeys, ItemKeyNames, fmt.Sprintf("every key name says what it serves (%s)", plural(n, "key", "keys")),
		f.reason("", "key names that do not say what they serve"),
		"name each key for the service or purpose it serves (for example prod-search), in the policy and in the Console")
}

func (e *eval) serviceTokens() Item {
	var f findings
	owners := map[[sha256.Size]byte][]string{}
	n := 0
	for _, name := range sortedKeys(e.p.Services) {
		s := e.p.Services[name]
		if len(s.Tokens) == 0 {
			f.add(Fail, "service "+name+" (no token)", "service %s has no token of its own", name)
		}
		for _, t := range s.Tokens {
			n++
			owners[t.SHA256] = append(owners[t.SHA256], "service "+name)
		}
	}
	for _, t := range e.p.AdminTokens {
		owners[t.SHA256] = append(owners[t.SHA256], "admin.tokens")
	}
	var dups []string
	for d, who := range owners {
		if len(who) > 1 {
			dups = append(dups, fmt.Sprintf("token %s (%s)", tokenLabel("", d), strings.Join(who, ", ")))
		}
	}
	slices.Sort(dups)
	for _, d := range dups {
		f.add(Fail, d, "%s: one token hash listed more than once", d)
	}
	return f.item(HeadKeys, ItemServiceTokens,
		fmt.Sprintf("every service has tokens of its own (%s, %s)", plural(len(e.p.Services), "service", "services"), plural(n, "token", "tokens")),
		f.reason("services without a token of their own, or shared tokens", ""),
		"run clade-gateway new-token for each service without one and list its sha256 under that service only; never share a token")
}

func (e *eval) serviceBudgets() Item {
	var f findings
	for _, name := range sortedKeys(e.p.Services) {
		s := e.p.Services[name]
		var enforced, dry int
		for _, b := range s.AllBudgets() {
			if b.Enforce {
				enforced++
			} else {
				dry++
			}
		}
		switch {
		case enforced > 0:
		case dry > 0:
			f.add(Warn, name, "service %s is covered only by dry-run budgets (enforce: false)", name)
		default:
			f.add(Fail, name, "service %s has no budget: not its own, its team's or its workspace's", name)
		}
	}
	return f.item(HeadLimits, ItemServiceBudgets,
		fmt.Sprintf("every service is covered by an enforced budget (%s)", plural(len(e.p.Services), "service", "services")),
		f.reason("services with no budget at all", "services covered only by dry-run budgets"),
		"give each service an enforced budget of its own, its team's or its workspace's; switch dry-run budgets to enforce once their limits are right")
}

func (e *eval) teamAlerts() Item {
	var f findings
	if len(e.p.Teams) > 0 && len(e.p.Webhooks) == 0 {
		f.add(Fail, "no webhook", "no webhook is configured, so no alert_at threshold reaches anyone")
	}
	// One pass over the services: the checklist is evaluated at every
	// scrape, and teams x services is 400,000 steps at 2,000 services.
	alerted := make(map[*policy.Team]bool, len(e.p.Teams))
	for _, s := range e.p.Services {
		if hasAlert(s.Budgets) || (s.Workspace != nil && hasAlert(s.Workspace.Budgets)) {
			alerted[s.Team] = true
		}
	}
	for _, name := range sortedKeys(e.p.Teams) {
		t := e.p.Teams[name]
		if !alerted[t] && !hasAlert(t.Budgets) {
			f.add(Fail, "team "+name+" (no alert_at)", "no budget of team %s, its services or their workspaces has alert_at", name)
		}
	}
	return f.item(HeadAlerts, ItemTeamAlerts,
		fmt.Sprintf("an alert_at threshold and a webhook reach every team (%s, %s)", plural(len(e.p.Teams), "team", "teams"), plural(len(e.p.Webhooks), "webhook", "webhooks")),
		f.reason("spending alerts do not reach everyone", ""),
		"add alert_at (for example [0.5, 0.8]) to a budget of each team, and a webhook that notifies the people who own the spend")
}

func hasAlert(bs []budget.Budget) bool {
	for _, b := range bs {
		if len(b.AlertAt) > 0 {
			return true
		}
	}
	return false
}

func (e *eval) keyRotation() Item {
	var f findings
	n := 0
	for _, name := range sortedKeys(e.p.Workspaces) {
		for _, k := range e.p.Workspaces[name].Keys {
			n++
			id := name + "/" + k.Name
			if k.Created.IsZero() {
				f.add(Fail, id+" (no created date)", "key %s has no created date, so its age is unknown", id)
				continue
			}
			days := e.now.Sub(k.Created).Hours() / 24
			switch {
			case days > RotationFailDays:
				f.add(Fail, fmt.Sprintf("%s (%d days)", id, int(days)), "key %s is %d days old, over %d", id, int(days), RotationFailDays)
			case days > RotationWarnDays:
				f.add(Warn, fmt.Sprintf("%s (%d days)", id, int(days)), "key %s is %d days old, over %d: rotate it before day %d", id, int(days), RotationWarnDays, RotationFailDays)
			}
		}
	}
	return f.item(HeadRotation, ItemKeyRotation,
		fmt.Sprintf("every key has a created date and is at most %d days old (%s)", RotationWarnDays, plural(n, "key", "keys")),
		f.reason(fmt.Sprintf("keys over %d days old or of unknown age", RotationFailDays), fmt.Sprintf("keys over %d days old", RotationWarnDays)),
		"add a new key first in the workspace's keys with its created date, reload, then remove the old key and revoke it in the Console; give every key a created date")
}

func (e *eval) serviceOwners() Item {
	var f findings
	for _, name := range sortedKeys(e.p.Services) {
		s := e.p.Services[name]
		if s.Team == nil || e.p.Teams[s.Team.Name] != s.Team {
			f.add(Fail, "service "+name, "service %s belongs to no team in the policy", name)
		}
	}
	for _, name := range sortedKeys(e.p.Workspaces) {
		for _, t := range e.p.Workspaces[name].Teams {
			if _, ok := e.p.Teams[t]; !ok {
				f.add(Warn, "workspace "+name+" (team "+t+")", "workspace %s is open to team %s, which the policy does not define", name, t)
			}
		}
	}
	return f.item(HeadOffboarding, ItemServiceOwners, "every service belongs to a team in the policy, and workspaces are open only to teams it defines",
		f.reason("services whose team is gone", "workspaces open to teams the policy does not define"),
		"remove the services and token hashes of teams that are gone, and their entries in workspaces' teams:, then reload")
}

func (e *eval) adminTokensNamed() Item {
	var f findings
	for i, t := range e.p.AdminTokens {
		if strings.TrimSpace(t.Name) == "" {
			label := fmt.Sprintf("admin.tokens[%d] (sha256 %s)", i, tokenLabel("", t.SHA256))
			f.add(Fail, label, "%s has no name, so nobody is on record as holding it", label)
		}
	}
	return f.item(HeadAudit, ItemAdminTokensNamed, fmt.Sprintf("every admin token is named (%s)", plural(len(e.p.AdminTokens), "token", "tokens")),
		f.reason("admin tokens without a name", ""),
		"give each admin token a name: that says who holds it, and remove the ones nobody claims")
}

func (e *eval) adminTokenCount() Item {
	var f findings
	n := len(e.p.AdminTokens)
	if n >= e.o.AdminTokenLimit {
		f.add(Fail, plural(n, "admin token", "admin tokens"), "%s, not fewer than %d", plural(n, "admin token", "admin tokens"), e.o.AdminTokenLimit)
	}
	return f.item(HeadAudit, ItemAdminTokenCount,
		fmt.Sprintf("%s, fewer than %d", plural(n, "admin token", "admin tokens"), e.o.AdminTokenLimit),
		f.reason(fmt.Sprintf("too many admin tokens (fewer than %d expected)", e.o.AdminTokenLimit), ""),
		"keep admin tokens to the few people who adjust budgets and remove the rest, or raise CLADE_CHECKLIST_ADMIN_TOKEN_LIMIT deliberately")
}

func (e *eval) adminListener() Item {
	var f findings
	addr := e.o.AdminListen
	host, _, err := net.SplitHostPort(addr)
	switch {
	case addr == "":
		f.add(Warn, "address unknown", "the admin listener's address is not known")
	case err != nil:
		f.add(Warn, addr+" (not host:port)", "the admin listener address %q is not host:port", addr)
	case host == "" || host == "0.0.0.0" || host == "::":
		f.add(Warn, addr+" (every interface)", "the admin listener %s binds every interface; fine only where just a private network reaches the host (a Kubernetes pod with no public Service)", addr)
	case host == "localhost":
	default:
		ip, perr := netip.ParseAddr(host)
		switch {
		case perr != nil:
			f.add(Warn, addr+" (host name)", "the admin listener binds host name %s, which may resolve to a public address", host)
		case ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast():
		default:
			f.add(Fail, addr, "the admin listener %s is on a public address", addr)
		}
	}
	return f.item(HeadAudit, ItemAdminListener, fmt.Sprintf("the admin listener %s is on a private address", addr),
		f.reason("the admin listener is on a public address", "the admin listener may be reachable from outside: make sure only a private network reaches it"),
		"set CLADE_ADMIN_LISTEN to 127.0.0.1:9090 or a private address; in Kubernetes expose it only through a cluster-internal Service")
}

func (e *eval) storeFailureAllow() Item {
	var f findings
	for _, name := range sortedKeys(e.p.Services) {
		if e.p.Services[name].OnStoreFailure == policy.FailAllow {
			f.add(Warn, name, "service %s has on_store_failure: allow: it is forwarded without a budget check while the store is down", name)
		}
	}
	return f.item(HeadFailureModes, ItemStoreFailureAllow, "every service is refused while the budget store is down (on_store_failure: reject)",
		f.reason("", "deliberate risk, forwarded without a budget check while the store is down (on_store_failure: allow)"),
		"keep on_store_failure: allow only where an outage costs more than overspend, and watch the store-down alert")
}

func (e *eval) unknownModelMax() Item {
	var f findings
	if e.p.Pricing.UnknownModel == policy.UnknownChargeMax {
		f.status = Warn
		for _, name := range sortedKeys(e.p.Services) {
			if ms := e.p.Services[name].Models; len(ms) > 0 {
				f.add(Warn, name, "service %s may call models the price table does not know that match %s", name, strings.Join(ms, ", "))
			} else {
				f.add(Warn, name, "service %s may call any model the price table does not know", name)
			}
		}
	}
	return f.item(HeadFailureModes, ItemUnknownModelMax, "models the price table does not know are refused (pricing.unknown_model: reject)",
		f.reason("", "deliberate risk, may call models the price table does not know, charged as the dearest (pricing.unknown_model: charge_max)"),
		"add prices for the models you use under pricing.models and set unknown_model: reject, or keep charge_max knowingly")
}

// tokenLabel names a token by its name, else by the start of its hash.
func tokenLabel(name string, d [sha256.Size]byte) string {
	if name != "" {
		return name
	}
	return hex.EncodeToString(d[:4]) + "…"
}
