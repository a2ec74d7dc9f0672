package policy

import (
	"math"
	"path"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

// platformKeys are the top-level keys of a single policy file or of
// clade.yaml in folder mode.
var platformKeys = []string{"timezone", "on_store_failure", "unknown_tools", "fit_max_tokens", "min_max_tokens", "estimate", "workspaces", "teams", "services", "admin", "pricing", "webhooks", "principals", "reconcile"}

// defaultServerToolAllowance is what a request with server tools or file
// references adds to its admission estimate unless the policy says.
const defaultServerToolAllowance = 500_000_000 // 0.50 USD

// parsePlatform reads a whole policy file (or clade.yaml) into rp.
func (w *walker) parsePlatform(root *yaml.Node, rp *rawPolicy) {
	top := w.object(root, "", root.Line, platformKeys...)
	if top == nil {
		return
	}
	if n, p := top.get("timezone"); n != nil {
		rp.loc = w.location(n, p)
	}
	if n, p := top.get("on_store_failure"); n != nil {
		rp.onStoreFailure = w.failureMode(n, p)
	}
	if n, p := top.get("unknown_tools"); n != nil {
		rp.unknownTools = w.unknownTools(n, p)
	}
	rp.fit = w.parseFit(top)
	if n, p := top.get("estimate"); n != nil {
		if o := w.object(n, p, top.vals["estimate"].at.Line, "server_tool_allowance_usd"); o != nil {
			if n, p := o.get("server_tool_allowance_usd"); n != nil {
				if v, ok := w.amount(n, p); ok && v < 0 {
					w.errorf(n, p, "must not be negative")
				} else if ok {
					rp.estimate = v
				}
			}
		}
	}
	if n, p := top.get("workspaces"); n != nil {
		for _, e := range w.entries(n, p) {
			if ws := w.parseWorkspace(e); ws != nil {
				rp.workspaces = append(rp.workspaces, ws)
			}
		}
	}
	if n, p := top.get("teams"); n != nil {
		for _, e := range w.entries(n, p) {
			name, ok := w.name(e.at, e.path, "team")
			o := w.object(e.val, e.path, e.at.Line, "budgets")
			if !ok || o == nil {
				continue
			}
			t := &rawTeam{at: w.at(e.at, e.path), name: name}
			if n, p := o.get("budgets"); n != nil {
				t.budgets = w.parseBudgets(n, p, budget.ScopeTeam, name)
			}
			rp.teams = append(rp.teams, t)
		}
	}
	if n, p := top.get("services"); n != nil {
		for _, e := range w.entries(n, p) {
			if s := w.parseService(e, ""); s != nil {
				rp.services = append(rp.services, s)
			}
		}
	}
	if n, p := top.get("admin"); n != nil {
		if o := w.object(n, p, top.vals["admin"].at.Line, "tokens"); o != nil {
			if n, p := o.get("tokens"); n != nil {
				rp.admin = w.parseTokens(n, p)
			}
		}
	}
	if n, p := top.get("pricing"); n != nil {
		w.parsePricing(n, p, top.vals["pricing"].at.Line, rp)
	}
	if n, p := top.get("webhooks"); n != nil {
		rp.webhooks = w.parseWebhooks(n, p)
	}
	if n, p := top.get("principals"); n != nil {
		rp.principals = w.parsePrincipalSettings(n, p, top.vals["principals"].at.Line)
	}
	if n, p := top.get("reconcile"); n != nil {
		rp.reconcile = w.parseReconcile(n, p, top.vals["reconcile"].at.Line)
	}
}

func (w *walker) location(n *yaml.Node, p string) *time.Location {
	s, ok := w.str(n, p)
	if !ok {
		return nil
	}
	// Local is whatever the host says, so two replicas could disagree on
	// when a window resets.
	if s == "" || s == "Local" {
		w.errorf(n, p, "must name an IANA time zone such as UTC or Europe/Berlin")
		return nil
	}
	loc, err := time.LoadLocation(s)
	if err != nil {
		w.errorf(n, p, "unknown time zone %s", strconv.Quote(s))
		return nil
	}
	return loc
}

func (w *walker) failureMode(n *yaml.Node, p string) FailureMode {
	s, ok := w.str(n, p)
	if !ok {
		return ""
	}
	switch m := FailureMode(s); m {
	case FailReject, FailAllow:
		return m
	}
	w.errorf(n, p, "must be reject or allow, not %s", strconv.Quote(s))
	return ""
}

func (w *walker) unknownTools(n *yaml.Node, p string) UnknownTools {
	s, ok := w.str(n, p)
	if !ok {
		return UnknownToolsReject
	}
	switch m := UnknownTools(s); m {
	case UnknownToolsReject, UnknownToolsAllow:
		return m
	}
	w.errorf(n, p, "must be reject or allow, not %s", strconv.Quote(s))
	return UnknownToolsReject
}

func (w *walker) parseWorkspace(e entry) *rawWorkspace {
	name, nameOK := w.name(e.at, e.path, "workspace")
	o := w.object(e.val, e.path, e.at.Line, "keys", "teams", "budgets", "environment", "anthropic_id")
	if !nameOK || o == nil {
		return nil
	}
	ws := &rawWorkspace{at: w.at(e.at, e.path), name: name, anthropicID: w.anthropicID(o, workspaceIDRE, "wrkspc_")}
	n, p := o.require("keys")
	seen := map[string]pos{}
	for i, item := range w.seq(n, p) {
		ip := index(p, i)
		k := w.parseKey(item, ip)
		if k == nil {
			continue
		}
		if first, dup := seen[k.name]; dup {
			w.errorf(item, join(ip, "name"), "key name %s also used at line %d", strconv.Quote(k.name), first.line)
			continue
		}
		seen[k.name] = k.at
		ws.keys = append(ws.keys, *k)
	}
	if n != nil && len(w.seq(n, p)) == 0 {
		w.errorf(n, p, "a workspace needs at least one key")
	}
	if n, p := o.get("teams"); n != nil {
		ws.teams = w.refs(n, p, "team")
	}
	if n, p := o.get("budgets"); n != nil {
		ws.budgets = w.parseBudgets(n, p, budget.ScopeWorkspace, name)
	}
	if n, p := o.get("environment"); n != nil {
		ws.env = w.environment(n, p)
	}
	return ws
}

func (w *walker) environment(n *yaml.Node, p string) Environment {
	s, ok := w.str(n, p)
	if !ok {
		return ""
	}
	switch e := Environment(s); e {
	case EnvProduction, EnvStaging, EnvDevelopment:
		return e
	}
	w.errorf(n, p, "must be production, staging or development, not %s", strconv.Quote(s))
	return ""
}

func (w *walker) parseKey(n *yaml.Node, p string) *rawKey {
	o := w.object(n, p, n.Line, "name", "env", "file", "created", "anthropic_id")
	if o == nil {
		return nil
	}
	k := &rawKey{at: w.at(n, p), anthropicID: w.anthropicID(o, apiKeyIDRE, "apikey_")}
	nn, np := o.require("name")
	ok := nn != nil
	if ok {
		k.name, ok = w.name(nn, np, "key")
	}
	k.secret = w.secretRef(o, "env", "file")
	if cn, cp := o.get("created"); cn != nil {
		if t, tok := w.date(cn, cp); tok && t.After(w.now()) {
			w.errorf(cn, cp, "is in the future (%s)", t.Format(time.DateOnly))
		} else {
			k.created = t
		}
	}
	if !ok {
		return nil
	}
	return k
}

// refs reads a list of names that must resolve elsewhere.
func (w *walker) refs(n *yaml.Node, p, what string) []ref {
	var out []ref
	for i, item := range w.seq(n, p) {
		ip := index(p, i)
		if s, ok := w.name(item, ip, what); ok {
			out = append(out, ref{name: s, at: w.at(item, ip)})
		}
	}
	return out
}

// parseService reads one service. fileTeam is the team a team file
// belongs to ("" outside folder mode): there team may be omitted, and must
// match when given.
func (w *walker) parseService(e entry, fileTeam string) *rawService {
	name, nameOK := w.name(e.at, e.path, "service")
	o := w.object(e.val, e.path, e.at.Line, "team", "workspace", "tokens", "models", "budgets", "rate_limit", "on_store_failure",
		"fit_max_tokens", "min_max_tokens", "principals")
	if !nameOK || o == nil {
		return nil
	}
	s := &rawService{at: w.at(e.at, e.path), name: name}
	if fileTeam != "" {
		s.team = ref{name: fileTeam, at: s.at}
		if n, p := o.get("team"); n != nil {
			if t, ok := w.str(n, p); ok && t != fileTeam {
				w.errorf(n, p, "a service in the file of team %s must belong to it, not to team %s",
					strconv.Quote(fileTeam), strconv.Quote(t))
			}
		}
	} else if n, p := o.require("team"); n != nil {
		if t, ok := w.name(n, p, "team"); ok {
			s.team = ref{name: t, at: w.at(n, p)}
		}
	}
	if n, p := o.require("workspace"); n != nil {
		if ws, ok := w.name(n, p, "workspace"); ok {
			s.workspace = ref{name: ws, at: w.at(n, p)}
		}
	}
	if n, p := o.get("tokens"); n != nil {
		s.tokens = w.parseTokens(n, p)
	}
	if n, p := o.get("models"); n != nil {
		for i, item := range w.seq(n, p) {
			ip := index(p, i)
			g, ok := w.str(item, ip)
			if !ok {
				continue
			}
			if _, err := path.Match(g, ""); err != nil || g == "" {
				w.errorf(item, ip, "%s is not a valid glob", strconv.Quote(g))
				continue
			}
			s.models = append(s.models, g)
		}
	}
	if n, p := o.get("budgets"); n != nil {
		s.budgets = w.parseBudgets(n, p, budget.ScopeService, name)
	}
	if n, p := o.get("rate_limit"); n != nil {
		s.rateLimit = w.parseRateLimit(n, p, o.vals["rate_limit"].at.Line)
	}
	if n, p := o.get("on_store_failure"); n != nil {
		s.onStoreFailure = w.failureMode(n, p)
	}
	s.fit = w.parseFit(o)
	if n, p := o.get("principals"); n != nil {
		s.principals = w.parsePrincipals(n, p)
	}
	return s
}

// parseFit reads fit_max_tokens and min_max_tokens from o.
func (w *walker) parseFit(o *object) rawFit {
	var f rawFit
	if n, p := o.get("fit_max_tokens"); n != nil {
		if v, ok := w.boolean(n, p); ok {
			f.enabled = &v
		}
	}
	if n, p := o.get("min_max_tokens"); n != nil {
		if v, ok := w.integer(n, p); ok {
			if v < 1 || v > maxMinMaxTokens {
				w.errorf(n, p, "must be at least 1 and at most %d", maxMinMaxTokens)
			} else {
				m := int64(v)
				f.min = &m
			}
		}
	}
	return f
}

// maxMinMaxTokens is far above any model's output limit: a larger floor
// is a typo.
const maxMinMaxTokens = 1 << 30

// maxRPS keeps ceil(rps) well inside an int and catches a misplaced
// decimal point.
const maxRPS = 1e6

func (w *walker) parseRateLimit(n *yaml.Node, p string, line int) *RateLimit {
	o := w.object(n, p, line, "requests_per_second", "burst")
	if o == nil {
		return nil
	}
	rn, rp := o.require("requests_per_second")
	if rn == nil {
		return nil
	}
	rps, ok := w.number(rn, rp)
	if !ok {
		return nil
	}
	if rps <= 0 || rps > maxRPS {
		w.errorf(rn, rp, "must be more than 0 and at most %d", int(maxRPS))
		return nil
	}
	rl := &RateLimit{RequestsPerSecond: rps, Burst: int(math.Ceil(rps))}
	if bn, bp := o.get("burst"); bn != nil {
		b, ok := w.integer(bn, bp)
		if !ok {
			return nil
		}
		if b < 1 {
			w.errorf(bn, bp, "must be at least 1")
			return nil
		}
		rl.Burst = b
	}
	return rl
}
