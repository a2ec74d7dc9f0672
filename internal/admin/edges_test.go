package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
)

const adjustOK = `{"scope":"service","name":"recommendation","id":"daily","amount_usd":"1","reason":"x"}`

// The adjust body is parsed strictly: exact keys, each once, string
// values, nothing after the object.
func TestAdjustParsesStrictly(t *testing.T) {
	h, _ := setup(t, nil)
	for _, body := range []string{
		`{"Scope":"service","name":"recommendation","id":"daily","amount_usd":"1","reason":"x"}`,
		`{"scope":"service","name":"recommendation","id":"daily","AMOUNT_USD":"1","reason":"x"}`,
		`{"scope":"service","name":"recommendation","id":"daily","amount\u005fusd":"1","reason":"x"}`,
		`{"scope":"service","name":"recommendation","id":"daily","amount_usd":"1","amount_usd":"-1","reason":"x"}`,
		adjustOK + `{"amount_usd":"1000"}`,
		adjustOK + `x`,
		adjustOK + `,`,
		`[` + adjustOK + `]`,
		`{"scope":"service","name":"recommendation","id":"daily","amount_usd":"1","reason":["x"]}`,
		`{"scope":"service","name":"recommendation","id":"daily","amount_usd":"1","reason":"x"`,
		``,
	} {
		if w := do(h, "POST", "/admin/budgets/adjust", adminToken, body); w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400 (%s)", body, w.Code, w.Body)
		}
	}
	// Whitespace around a valid body is fine, and nothing above applied.
	if w := do(h, "POST", "/admin/budgets/adjust", adminToken, "\n "+adjustOK+" \n"); w.Code != http.StatusOK {
		t.Fatalf("valid body: %d %s", w.Code, w.Body)
	}
	if w := do(h, "GET", "/admin/budgets", adminToken, ""); !strings.Contains(w.Body.String(), `"spent_usd":"1"`) {
		t.Errorf("after one valid adjustment of $1: %s", w.Body)
	}
}

// Amounts are bounded per request and per window: no counter can wrap,
// and the refusal is a clear 400 that applies nothing.
func TestAdjustAmountsAreBounded(t *testing.T) {
	h, _ := setup(t, nil)
	adj := func(amount string) (int, string) {
		w := do(h, "POST", "/admin/budgets/adjust", adminToken,
			`{"scope":"service","name":"recommendation","id":"daily","amount_usd":"`+amount+`","reason":"x"}`)
		return w.Code, w.Body.String()
	}
	for _, a := range []string{"9223372036.854775807", "9223372037", "-9223372037", "1000000000.000000001", "99999999999999999999"} {
		if code, body := adj(a); code != http.StatusBadRequest {
			t.Errorf("amount %s: %d %s, want 400", a, code, body)
		}
	}
	if code, body := adj("1000000000"); code != http.StatusOK {
		t.Fatalf("amount at the bound: %d %s", code, body)
	}
	// Nine more of those would wrap int64 in the embedded store.
	for range 9 {
		code, body := adj("1000000000")
		if code != http.StatusBadRequest || !strings.Contains(body, "nothing applied") {
			t.Fatalf("adjustment past the window bound: %d %s, want 400", code, body)
		}
	}
	w := do(h, "GET", "/admin/budgets", adminToken, "")
	if !strings.Contains(w.Body.String(), `"spent_usd":"1000000000"`) {
		t.Errorf("spend after refused adjustments: %s", w.Body)
	}
}

// Failed admin authentications are counted by reason and logged without
// the token; the audit names the admin token by its policy name, not by
// what the caller writes in actor.
func TestAdminAuthFailuresAndAuditActor(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, logs := setupWith(t, nil, reg, "ops-alice")
	do(h, "GET", "/admin/budgets", "", "")
	do(h, "GET", "/admin/budgets", "clade_admin_guess_1", "")
	do(h, "POST", "/admin/budgets/adjust", "clade_admin_guess_2", adjustOK)
	for reason, want := range map[string]float64{"missing": 1, "invalid": 2, "no_policy": 0} {
		if got := testutil.ToFloat64(mustCounter(t, reg, reason)); got != want {
			t.Errorf("clade_gateway_admin_auth_failures_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	failed := logs.FilterMessage("admin authentication failed")
	if failed.Len() != 3 {
		t.Errorf("%d failed-authentication log lines, want 3", failed.Len())
	}
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if strings.Contains(f.String, "clade_admin_guess") {
				t.Errorf("a presented token was logged in %q", e.Message)
			}
		}
	}
	w := do(h, "POST", "/admin/budgets/adjust", adminToken,
		`{"scope":"service","name":"recommendation","id":"daily","amount_usd":"2","reason":"refund","actor":"someone-else"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("adjust: %d %s", w.Code, w.Body)
	}
	audit := logs.FilterField(zap.String("audit", "budget_adjust"))
	if audit.FilterField(zap.String("actor", "ops-alice")).FilterField(zap.String("actor_note", "someone-else")).Len() != 1 {
		t.Errorf("audit entry does not name the token ops-alice: %v", audit.All())
	}
}

// An unnamed admin token is named by its digest's first 12 hex digits.
func TestAuditNamesUnnamedTokenByDigest(t *testing.T) {
	h, logs := setup(t, nil)
	if w := do(h, "POST", "/admin/budgets/adjust", adminToken, adjustOK); w.Code != http.StatusOK {
		t.Fatalf("adjust: %d %s", w.Code, w.Body)
	}
	sum := sha256.Sum256([]byte(adminToken))
	want := "sha256:" + hex.EncodeToString(sum[:6])
	if logs.FilterField(zap.String("actor", want)).Len() != 1 {
		t.Errorf("audit entry does not name the token %s: %v", want, logs.All())
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, reason string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "clade_gateway_admin_auth_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, m.GetCounter().GetValue)
				}
			}
		}
	}
	t.Fatalf("no clade_gateway_admin_auth_failures_total{reason=%q}", reason)
	return nil
}
