package policy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

// Principal sources: where a request names the caller inside its service.
const (
	FromMetadataUserID    = "metadata.user_id"
	FromClaudeCodeUser    = "claude_code.user"
	FromClaudeCodeSession = "claude_code.session"
	FromClaudeCodeAgent   = "claude_code.agent"
	FromHeaderPrefix      = "header:"
)

// WhenMissing says what admission does with a request that does not carry
// a principal's value.
type WhenMissing string

// When-missing modes.
const (
	MissingReject WhenMissing = "reject" // 400 before any hold (default)
	MissingAllow  WhenMissing = "allow"  // counted under the service alone
)

// MaxPrincipalValue is the longest principal value admitted, in bytes.
const MaxPrincipalValue = 256

// hashedPrefix marks a stored value that is a keyed hash of the real one.
const hashedPrefix = "h:"

// Principal is one level of caps inside a service: every distinct value
// of From gets its own copy of Budgets (or of its override), created by the
// store on first sight.
type Principal struct {
	Service     string
	From        string // a From* constant, or "header:<lower-case name>"
	Budgets     []budget.Budget
	Overrides   map[string][]budget.Budget // by raw value
	WhenMissing WhenMissing

	hashKey  []byte                     // nil: values are stored as sent
	byStored map[string][]budget.Budget // overrides by stored value
}

// Header returns the header a header: source reads, or "".
func (pr *Principal) Header() string {
	h, _ := strings.CutPrefix(pr.From, FromHeaderPrefix)
	if h == pr.From {
		return ""
	}
	return h
}

// Stored returns what the store, the spend log and the admin API keep for
// a raw value: the value itself, or "h:" and the first 128 bits of its
// HMAC-SHA256 under principals.hash_key when principals.hash_values is set.
func (pr *Principal) Stored(raw string) string {
	if pr.hashKey == nil {
		return raw
	}
	m := hmac.New(sha256.New, pr.hashKey)
	m.Write([]byte(raw))
	var sum [sha256.Size]byte
	return hashedPrefix + hex.EncodeToString(m.Sum(sum[:0])[:16])
}

// Hashed reports whether stored values are keyed hashes.
func (pr *Principal) Hashed() bool { return pr.hashKey != nil }

// BudgetsFor returns the budgets of the principal whose stored value is
// stored: its override, else the defaults, named for it.
func (pr *Principal) BudgetsFor(stored string) []budget.Budget {
	src := pr.byStored[stored]
	if src == nil {
		src = pr.Budgets
	}
	name := PrincipalName(pr.Service, pr.From, stored)
	out := make([]budget.Budget, len(src))
	for i, b := range src {
		b.Name = name
		out[i] = b
	}
	return out
}

// PrincipalName is the budget owner name of one principal:
// "<service>/<from>/<stored value>". Service names and sources hold no "/",
// so the value is everything after the second one.
func PrincipalName(service, from, stored string) string {
	return service + "/" + from + "/" + stored
}

// SplitPrincipalName undoes PrincipalName.
func SplitPrincipalName(name string) (service, from, stored string, ok bool) {
	service, rest, ok1 := strings.Cut(name, "/")
	from, stored, ok2 := strings.Cut(rest, "/")
	return service, from, stored, ok1 && ok2 && service != "" && from != "" && stored != ""
}

// Principal returns the service's principal level reading from, or nil.
func (s *Service) Principal(from string) *Principal {
	for _, pr := range s.Principals {
		if pr.From == from {
			return pr
		}
	}
	return nil
}

// PrincipalBudget finds a principal's budget by owner name and ID, for the
// admin API: name is "<service>/<from>/<value>", where value is the stored
// value or, with hashing on, also the raw one.
func (p *Policy) PrincipalBudget(name, id string) (budget.Budget, bool) {
	svc, from, value, ok := SplitPrincipalName(name)
	if !ok {
		return budget.Budget{}, false
	}
	s := p.Services[svc]
	if s == nil {
		return budget.Budget{}, false
	}
	pr := s.Principal(from)
	if pr == nil {
		return budget.Budget{}, false
	}
	if pr.Hashed() && !strings.HasPrefix(value, hashedPrefix) {
		value = pr.Stored(value)
	}
	for _, b := range pr.BudgetsFor(value) {
		if b.ID == id {
			return b, true
		}
	}
	return budget.Budget{}, false
}

// headerRE is an HTTP header field name (RFC 9110 token), lower case.
var headerRE = regexp.MustCompile(`^[a-z0-9!#$%&'*+.^_|~-]+$`)

// credentialHeaders carry the service token: a principal read from one
// would store the token as a value.
var credentialHeaders = []string{"x-api-key", "authorization", "proxy-authorization", "cookie"}

type rawPrincipal struct {
	at          pos
	from        string
	budgets     []rawBudget
	overrides   map[string][]rawBudget
	whenMissing WhenMissing
}

type rawPrincipalSettings struct {
	hashValues bool
	hashKey    secretRef
}

// parsePrincipalSettings reads the top-level principals block.
func (w *walker) parsePrincipalSettings(n *yaml.Node, p string, line int) rawPrincipalSettings {
	var s rawPrincipalSettings
	o := w.object(n, p, line, "hash_values", "hash_key_env", "hash_key_file")
	if o == nil {
		return s
	}
	if hn, hp := o.get("hash_values"); hn != nil {
		s.hashValues, _ = w.boolean(hn, hp)
	}
	_, env := o.vals["hash_key_env"]
	_, file := o.vals["hash_key_file"]
	if s.hashValues || env || file {
		s.hashKey = w.secretRef(o, "hash_key_env", "hash_key_file")
	}
	return s
}

// parsePrincipals reads a service's principals list.
func (w *walker) parsePrincipals(n *yaml.Node, p string) []rawPrincipal {
	var out []rawPrincipal
	seen := map[string]int{}
	for i, item := range w.seq(n, p) {
		ip := index(p, i)
		o := w.object(item, ip, item.Line, "from", "budgets", "overrides", "when_missing")
		if o == nil {
			continue
		}
		rp := rawPrincipal{at: w.at(item, ip), whenMissing: MissingReject}
		fn, fp := o.require("from")
		if fn != nil {
			if s, ok := w.str(fn, fp); ok {
				rp.from, ok = w.principalSource(fn, fp, s)
				if ok {
					if first, dup := seen[rp.from]; dup {
						w.errorf(fn, fp, "principal source %s also used at line %d", strconv.Quote(rp.from), first)
						ok = false
					}
					seen[rp.from] = fn.Line
				}
				if !ok {
					rp.from = ""
				}
			}
		}
		bn, bp := o.require("budgets")
		if bn != nil {
			rp.budgets = w.parseBudgets(bn, bp, budget.ScopePrincipal, "")
			if len(w.seq(bn, bp)) == 0 {
				w.errorf(bn, bp, "a principal needs at least one budget")
			}
		}
		if on, op := o.get("overrides"); on != nil {
			rp.overrides = map[string][]rawBudget{}
			for _, e := range w.entries(on, op) {
				switch {
				case e.key == "":
					w.errorf(e.at, e.path, "an override needs a value")
				case len(e.key) > MaxPrincipalValue:
					w.errorf(e.at, e.path, "an override value is at most %d bytes", MaxPrincipalValue)
				default:
					rp.overrides[e.key] = w.parseBudgets(e.val, e.path, budget.ScopePrincipal, "")
				}
			}
		}
		if mn, mp := o.get("when_missing"); mn != nil {
			if s, ok := w.str(mn, mp); ok {
				switch m := WhenMissing(s); m {
				case MissingReject, MissingAllow:
					rp.whenMissing = m
				default:
					w.errorf(mn, mp, "must be reject or allow, not %s", strconv.Quote(s))
				}
			}
		}
		if rp.from != "" {
			out = append(out, rp)
		}
	}
	return out
}

// principalSource checks a from: value and returns it in canonical form.
func (w *walker) principalSource(n *yaml.Node, p, s string) (string, bool) {
	switch s {
	case FromMetadataUserID, FromClaudeCodeUser, FromClaudeCodeSession, FromClaudeCodeAgent:
		return s, true
	}
	if h, ok := strings.CutPrefix(s, FromHeaderPrefix); ok {
		h = strings.ToLower(h)
		switch {
		case !headerRE.MatchString(h):
			w.errorf(n, p, "%s is not an HTTP header name", strconv.Quote(h))
			return "", false
		case contains(credentialHeaders, h):
			w.errorf(n, p, "header %s carries credentials and cannot name a principal", h)
			return "", false
		}
		return FromHeaderPrefix + h, true
	}
	w.errorf(n, p, "must be metadata.user_id, header:<name>, claude_code.user, claude_code.session or claude_code.agent, not %s", strconv.Quote(s))
	return "", false
}

// minHashKey is the shortest principals hash key accepted: HMAC-SHA256
// wants at least 128 bits of key to resist guessing values offline.
const minHashKey = 16

// principalHashKey resolves principals.hash_key_env or hash_key_file when
// hash_values is set. Without secrets resolved (check-config), a stand-in
// key lets the rest compile; nothing is stored under it.
func principalHashKey(s rawPrincipalSettings, o LoadOptions, probs *problems) []byte {
	if !s.hashValues {
		return nil
	}
	sec, ok := resolveSecret(s.hashKey, o, probs)
	if !ok {
		return []byte("unresolved principals hash key")
	}
	if len(sec) < minHashKey {
		probs.add(s.hashKey.at, "the principals hash key in %s is shorter than %d bytes (value not shown)", secretSource(s.hashKey), minHashKey)
	}
	return []byte(sec)
}

// compilePrincipals builds a service's principal levels. key is the hash
// key, nil when values are stored as sent.
func compilePrincipals(service string, rps []rawPrincipal, key []byte, budgets func([]rawBudget) []budget.Budget) []*Principal {
	var out []*Principal
	for _, rp := range rps {
		pr := &Principal{Service: service, From: rp.from, Budgets: budgets(rp.budgets), WhenMissing: rp.whenMissing, hashKey: key}
		if len(rp.overrides) > 0 {
			pr.Overrides = make(map[string][]budget.Budget, len(rp.overrides))
			pr.byStored = make(map[string][]budget.Budget, len(rp.overrides))
			for v, rbs := range rp.overrides {
				bs := budgets(rbs)
				pr.Overrides[v] = bs
				pr.byStored[pr.Stored(v)] = bs
			}
		}
		out = append(out, pr)
	}
	return out
}

// principals reports principal levels added, removed and changed. Override
// values are named: they are in the policy file already.
func (d *differ) principals(who string, a, b []*Principal) {
	byFrom := func(ps []*Principal) map[string]*Principal {
		m := make(map[string]*Principal, len(ps))
		for _, p := range ps {
			m[p.From] = p
		}
		return m
	}
	both(byFrom(a), byFrom(b), func(from string, x, y *Principal) {
		lvl := fmt.Sprintf("%s: principals from %s", who, from)
		switch {
		case y == nil:
			d.add("%s removed", lvl)
			return
		case x == nil:
			d.add("%s added (when_missing %s)", lvl, y.WhenMissing)
			x = &Principal{}
		case x.WhenMissing != y.WhenMissing:
			d.add("%s: when_missing changed from %s to %s", lvl, x.WhenMissing, y.WhenMissing)
		}
		d.budgets(lvl, x.Budgets, y.Budgets)
		ov := func(p *Principal) map[string]*Principal {
			m := make(map[string]*Principal, len(p.Overrides))
			for v, bs := range p.Overrides {
				m[v] = &Principal{Budgets: bs}
			}
			return m
		}
		both(ov(x), ov(y), func(v string, o, n *Principal) {
			if o == nil {
				o = &Principal{}
			}
			if n == nil {
				n = &Principal{}
			}
			d.budgets(fmt.Sprintf("%s override %s", lvl, strconv.Quote(v)), o.Budgets, n.Budgets)
		})
	})
}
