package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// Reconcile configures the comparison of the gateway's spend ledger with
// Anthropic's usage and cost reports (the Admin API).
type Reconcile struct {
	// AdminKey says where the read-only Admin API key lives. It is read
	// only by the process that reconciles (Resolve), so replicas that do
	// not reconcile never need it.
	AdminKey AdminKeyRef
	// ToleranceUSD and ToleranceRatio bound a difference that is not a
	// finding: |drift| <= max(ToleranceUSD, ToleranceRatio × Anthropic's
	// figure). ToleranceRatio is in billionths (money.Nanos units of 1).
	ToleranceUSD   money.Nanos
	ToleranceRatio money.Nanos
	// ChargeUnmetered charges unmetered spend found for a closed day to the
	// workspace's budgets, once per finding.
	ChargeUnmetered bool
}

// DefaultToleranceUSD is a cent: the cost report's resolution.
const DefaultToleranceUSD = money.PerUSD / 100

// Enabled reports whether an admin key is configured at all.
func (r Reconcile) Enabled() bool { return r.AdminKey.Env != "" || r.AdminKey.File != "" }

// AdminKeyRef names an environment variable or a file holding the admin
// key; exactly one is set when reconciliation is configured.
type AdminKeyRef struct {
	Env, File string
}

// ErrNoAdminKey reports an admin key that is not configured or cannot be
// read. Its messages name the variable or file, never a value.
var ErrNoAdminKey = errors.New("policy: no admin key")

// Resolve reads the admin key.
func (a AdminKeyRef) Resolve(getenv func(string) string, readFile func(string) ([]byte, error)) (Secret, error) {
	switch {
	case a.Env != "":
		v := getenv(a.Env)
		if v == "" {
			return "", fmt.Errorf("%w: environment variable %s is not set", ErrNoAdminKey, a.Env)
		}
		return Secret(v), nil
	case a.File != "":
		b, err := readFile(a.File)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("%w: file %s does not exist", ErrNoAdminKey, a.File)
		case err != nil:
			return "", fmt.Errorf("%w: cannot read file %s", ErrNoAdminKey, a.File)
		}
		v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if v == "" {
			return "", fmt.Errorf("%w: file %s is empty", ErrNoAdminKey, a.File)
		}
		return Secret(v), nil
	}
	return "", fmt.Errorf("%w: set reconcile.admin_key in the policy", ErrNoAdminKey)
}

var (
	workspaceIDRE = regexp.MustCompile(`^wrkspc_[A-Za-z0-9]+$`)
	apiKeyIDRE    = regexp.MustCompile(`^apikey_[A-Za-z0-9]+$`)
)

// anthropicID reads a workspace or API key ID as Anthropic spells it.
func (w *walker) anthropicID(o *object, re *regexp.Regexp, prefix string) string {
	n, p := o.get("anthropic_id")
	if n == nil {
		return ""
	}
	s, ok := w.str(n, p)
	if ok && !re.MatchString(s) {
		w.errorf(n, p, "must be an Anthropic ID starting with %s (as the Console shows it), not %s", prefix, strconv.Quote(s))
		return ""
	}
	return s
}

func (w *walker) parseReconcile(n *yaml.Node, p string, line int) *Reconcile {
	o := w.object(n, p, line, "admin_key", "tolerance_usd", "tolerance_ratio", "charge_unmetered")
	if o == nil {
		return nil
	}
	r := &Reconcile{ToleranceUSD: DefaultToleranceUSD}
	if kn, kp := o.require("admin_key"); kn != nil {
		if ko := w.object(kn, kp, o.vals["admin_key"].at.Line, "env", "file"); ko != nil {
			ref := w.secretRef(ko, "env", "file")
			r.AdminKey = AdminKeyRef{Env: ref.env, File: ref.file}
		}
	}
	if tn, tp := o.get("tolerance_usd"); tn != nil {
		if v, ok := w.amount(tn, tp); ok && v < 0 {
			w.errorf(tn, tp, "must not be negative")
		} else if ok {
			r.ToleranceUSD = v
		}
	}
	if tn, tp := o.get("tolerance_ratio"); tn != nil {
		if v, ok := w.amount(tn, tp); ok && (v < 0 || v > money.PerUSD) {
			w.errorf(tn, tp, "must be a fraction between 0 and 1")
		} else if ok {
			r.ToleranceRatio = v
		}
	}
	if cn, cp := o.get("charge_unmetered"); cn != nil {
		if b, ok := w.boolean(cn, cp); ok {
			r.ChargeUnmetered = b
		}
	}
	return r
}

// parseDiscount reads pricing.discount, a multiplier on list prices in
// (0, 1], exact to nine digits.
func (w *walker) parseDiscount(o *object, rp *rawPolicy) {
	n, p := o.get("discount")
	if n == nil {
		return
	}
	v, ok := w.amount(n, p)
	if ok && (v <= 0 || v > money.PerUSD) {
		w.errorf(n, p, "must be a multiplier on list prices, more than 0 and at most 1 (0.9 for 10%% off)")
		return
	}
	if ok {
		rp.pricing.Discount = v
	}
}

// checkReconcileIDs reports Anthropic IDs used twice: each names exactly
// one workspace or key, or reports could not be attributed.
func checkReconcileIDs(rp *rawPolicy, probs *problems) {
	seen := map[string]pos{}
	claim := func(id string, at pos) {
		if id == "" {
			return
		}
		if first, dup := seen[id]; dup {
			probs.add(at, "anthropic_id %s also used at %s", id, first)
			return
		}
		seen[id] = at
	}
	for _, ws := range rp.workspaces {
		claim(ws.anthropicID, ws.at)
		for _, k := range ws.keys {
			claim(k.anthropicID, k.at)
		}
	}
}
