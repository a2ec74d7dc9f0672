package policy

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestReconcilePolicy(t *testing.T) {
	dir := writeFiles(t, map[string]string{"clade.yaml": `
workspaces:
  production:
    anthropic_id: wrkspc_01Prod
    keys:
      - {name: main, env: ANTHROPIC_KEY_PRODUCTION, anthropic_id: apikey_01Main}
pricing:
  discount: 0.9
reconcile:
  admin_key: {env: CLADE_ADMIN_KEY}
  tolerance_ratio: 0.005
  charge_unmetered: true
`})
	// Without the admin key in the environment the policy still loads: a
	// replica that does not reconcile never needs it.
	p := mustLoad(t, filepath.Join(dir, "clade.yaml"), opts(testEnv, true))
	ws := p.Workspaces["production"]
	if ws.AnthropicID != "wrkspc_01Prod" || ws.Keys[0].AnthropicID != "apikey_01Main" {
		t.Errorf("ids: %q %q", ws.AnthropicID, ws.Keys[0].AnthropicID)
	}
	r := p.Reconcile
	if !r.Enabled() || r.AdminKey.Env != "CLADE_ADMIN_KEY" || r.ToleranceUSD != DefaultToleranceUSD ||
		r.ToleranceRatio != 5_000_000 || !r.ChargeUnmetered || p.Pricing.Discount != 900_000_000 {
		t.Errorf("reconcile %+v, discount %d", r, p.Pricing.Discount)
	}
	_, err := r.AdminKey.Resolve(func(string) string { return "" }, readFile)
	if !errors.Is(err, ErrNoAdminKey) || !strings.Contains(err.Error(), "CLADE_ADMIN_KEY") {
		t.Errorf("resolve without the variable: %v", err)
	}
	key, err := r.AdminKey.Resolve(func(string) string { return "sk-ant-admin01-canary" }, readFile)
	if err != nil || key != "sk-ant-admin01-canary" {
		t.Errorf("resolve: %v", err)
	}
	missing := AdminKeyRef{File: filepath.Join(dir, "nope")}
	if _, err := missing.Resolve(nil, readFile); !errors.Is(err, ErrNoAdminKey) {
		t.Errorf("resolve a missing file: %v", err)
	}
	if (Reconcile{}).Enabled() {
		t.Error("reconciliation enabled without an admin key")
	}
}
