package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// endUserPolicy caps a product's end users by metadata.user_id and its
// customers by a header, inside the service's own budget.
func endUserPolicy(userUSD, whenMissing string) testpolicy.Policy {
	return testpolicy.Policy{
		Workspaces: []testpolicy.Workspace{{Name: "production", Keys: []testpolicy.Key{{Name: "prod", Env: "TEST_WORKSPACE_KEY"}}}},
		Teams:      []testpolicy.Team{{Name: "support"}},
		Services: []testpolicy.Service{{
			Name: "support-bot", Team: "support", Workspace: "production",
			Tokens:  []string{testutil.CanaryToken},
			Budgets: []testpolicy.Budget{testpolicy.Monthly("1000")},
			Principals: []testpolicy.Principal{
				{From: "metadata.user_id", Budgets: []testpolicy.Budget{testpolicy.Daily(userUSD, 0.5)}, WhenMissing: whenMissing,
					Overrides: []testpolicy.Override{{Value: "vip-1", Budgets: []testpolicy.Budget{testpolicy.Daily("5")}}}},
				{From: "header:x-customer-id", Budgets: []testpolicy.Budget{testpolicy.Monthly("100")}, WhenMissing: "allow"},
			},
		}},
		AdminTokens: []string{testutil.AdminToken},
	}
}

func asUser(id string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 1000, Messages: userMsg("hi"),
		Metadata: anthropic.MetadataParam{UserID: anthropic.String(id)}}
}

// spendUntilRefused sends as user until a 402 and returns the admitted
// count and the refusal's message.
func spendUntilRefused(t *testing.T, c anthropic.Client, user string, opts ...option.RequestOption) (int, string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		_, err := c.Messages.New(context.Background(), asUser(user), opts...)
		if err == nil {
			continue
		}
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusPaymentRequired {
			t.Fatalf("request %d of %s: %v", i, user, err)
		}
		if apiErr.Response.Header.Get("x-should-retry") != "false" {
			t.Errorf("402 without x-should-retry: false")
		}
		return i, apiErr.RawJSON()
	}
	t.Fatalf("%s was never refused", user)
	return 0, ""
}

func TestEndUserCapsWithSDK(t *testing.T) {
	_, up := startUpstream(t)
	hook := newHookSink(t)
	policy := endUserPolicy("0.1", "reject")
	policy.Webhooks = []testpolicy.Webhook{{Name: "ops", URLEnv: "HOOK_URL", Format: "json"}}
	e := env(t, up.URL, policy)
	e["HOOK_URL"] = hook.URL
	e["CLADE_NOTIFY_INTERVAL"] = "100ms"
	gw := testutil.StartApp(t, e)
	c := sdk(gw, testutil.CanaryToken)

	// Two end users each reach their own cap.
	n1, refusal := spendUntilRefused(t, c, "user-1")
	if n1 < 2 || !strings.Contains(refusal, "user user-1 has reached the daily budget of $0.1 for service support-bot") {
		t.Fatalf("user-1: %d admitted, %s", n1, refusal)
	}
	n2, _ := spendUntilRefused(t, c, "user-2")
	if n2 != n1 {
		t.Errorf("user-2 was admitted %d, user-1 %d", n2, n1)
	}
	// The remaining-budget header is the tightest enforced budget: the
	// user's $0.1, not the service's $1000.
	var resp *http.Response
	if _, err := c.Messages.New(context.Background(), asUser("user-3"), option.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	if rem, err := money.Parse(resp.Header.Get("clade-budget-remaining-usd")); err != nil || rem >= money.PerUSD/10 {
		t.Errorf("clade-budget-remaining-usd = %q, want under the user's $0.1", resp.Header.Get("clade-budget-remaining-usd"))
	}
	// An override raises one user's cap.
	vip, _ := spendUntilRefusedN(t, c, "vip-1", 3*n1)
	if vip != 3*n1 {
		t.Errorf("vip-1 was refused after %d requests; the override allows far more", vip)
	}
	// when_missing: reject refuses before any hold, naming the field.
	_, err := c.Messages.New(context.Background(), anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 10, Messages: userMsg("hi")})
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.RawJSON(), `caps spend per user, and this request has no metadata.user_id`) {
		t.Fatalf("no user id: %v", err)
	}
	// A header principal: the customer's monthly cap applies as well.
	if _, err := c.Messages.New(context.Background(), asUser("user-4"), option.WithHeader("x-customer-id", "acme")); err != nil {
		t.Fatal(err)
	}
	// Settlement runs after each response ends: list once nothing is held,
	// so that the spend the pages sort by no longer moves.
	rows := listSettledPrincipals(t, gw.AdminURL, "support-bot")
	if len(rows.Principals) != 6 {
		t.Fatalf("listed %d principals, want 6 (5 users, 1 customer): %+v", len(rows.Principals), rows.Principals)
	}
	if top := rows.Principals[0]; top.From != "metadata.user_id" || top.Value != "vip-1" {
		t.Errorf("top spender is %s %s, want vip-1", top.From, top.Value)
	}
	// Pages of two cover the same rows in the same order.
	var paged []string
	for cursor, pages := "", 0; ; pages++ {
		p := listPrincipals(t, gw.AdminURL, "support-bot", 2, cursor)
		for _, r := range p.Principals {
			paged = append(paged, r.From+"/"+r.Value)
		}
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	var all []string
	for _, r := range rows.Principals {
		all = append(all, r.From+"/"+r.Value)
	}
	if strings.Join(paged, ",") != strings.Join(all, ",") {
		t.Errorf("paged %v\nwhole %v", paged, all)
	}

	// Crediting user-1 lets it spend again.
	status, body := post(t, gw.AdminURL+"/admin/budgets/adjust", `{"scope":"principal","name":"support-bot/metadata.user_id/user-1","id":"daily","amount_usd":"-0.1","reason":"support ticket 7"}`)
	if status != http.StatusOK || !strings.Contains(body, `"scope":"principal"`) {
		t.Fatalf("adjust: %d %s", status, body)
	}
	if _, err := c.Messages.New(context.Background(), asUser("user-1")); err != nil {
		t.Fatalf("user-1 after a credit: %v", err)
	}

	// alert_at 0.5 notified once per user window, naming the user.
	deadline := time.Now().Add(5 * time.Second)
	for hook.count("support-bot/metadata.user_id/user-1") == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a few more notifier ticks
	if n := hook.count(`"name":"support-bot/metadata.user_id/user-1","id":"daily","period":"daily","enforced":true,"threshold":0.5`); n != 1 {
		t.Errorf("user-1's 50%% alert was sent %d times, want once:\n%s", n, hook.all())
	}
	if n := hook.count(`"name":"support-bot/metadata.user_id/user-2","id":"daily","period":"daily","enforced":true,"threshold":0.5`); n != 1 {
		t.Errorf("user-2's 50%% alert was sent %d times, want once:\n%s", n, hook.all())
	}
}

func spendUntilRefusedN(t *testing.T, c anthropic.Client, user string, max int) (int, string) {
	t.Helper()
	for i := 0; i < max; i++ {
		if _, err := c.Messages.New(context.Background(), asUser(user)); err != nil {
			return i, err.Error()
		}
	}
	return max, ""
}

func TestEndUsersMissingAllowedAndHashed(t *testing.T) {
	_, up := startUpstream(t)
	policy := endUserPolicy("0.1", "allow")
	policy.Principals = &testpolicy.PrincipalSettings{HashValues: true, HashKeyEnv: "PRINCIPAL_HASH_KEY"}
	e := env(t, up.URL, policy)
	e["PRINCIPAL_HASH_KEY"] = "k3y-for-hashing-principal-values"
	gw := testutil.StartApp(t, e)
	c := sdk(gw, testutil.CanaryToken)
	// when_missing: allow counts a request without a user under the
	// service alone.
	for i := 0; i < 3; i++ {
		if _, err := c.Messages.New(context.Background(), anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 1000, Messages: userMsg("hi")}); err != nil {
			t.Fatalf("no user id, allowed: %v", err)
		}
	}
	if rows := listPrincipals(t, gw.AdminURL, "support-bot", 10, ""); len(rows.Principals) != 0 {
		t.Fatalf("requests without a user created principals: %+v", rows.Principals)
	}
	n, refusal := spendUntilRefused(t, c, "jane.doe@example.com")
	if n < 2 || strings.Contains(refusal, "jane") || !strings.Contains(refusal, "user h:") {
		t.Fatalf("hashed user: %d admitted, refusal %s", n, refusal)
	}
	waitSpend(t, gw, n+3)
	admin := mustGetBody(t, gw.AdminURL+"/admin/budgets?service=support-bot")
	listing := mustGetBody(t, gw.AdminURL+"/admin/principals?service=support-bot")
	for where, s := range map[string]string{"spend log": gw.Spend.String(), "logs": gw.Logs.String(), "admin budgets": admin, "admin principals": listing,
		"metrics": scrapeText(t, gw.AdminURL)} {
		if strings.Contains(s, "jane") {
			t.Errorf("%s shows the raw value", where)
		}
	}
	if !strings.Contains(listing, `"hashed":true`) || !strings.Contains(gw.Spend.String(), `"principals":{"metadata.user_id":"h:`) {
		t.Errorf("hashed values are not shown:\n%s\n%s", listing, lastLine(gw.Spend.String()))
	}
	// The admin may name the raw value; the audit line shows the hash.
	status, body := post(t, gw.AdminURL+"/admin/budgets/adjust", `{"scope":"principal","name":"support-bot/metadata.user_id/jane.doe@example.com","id":"daily","amount_usd":"-0.1","reason":"refund"}`)
	if status != http.StatusOK || strings.Contains(body, "jane") || strings.Contains(gw.Logs.String(), "jane") {
		t.Fatalf("adjust by raw value: %d %s", status, body)
	}
	if _, err := c.Messages.New(context.Background(), asUser("jane.doe@example.com")); err != nil {
		t.Fatalf("jane after a credit: %v", err)
	}
}

func TestPrincipalBudgetFollowsReload(t *testing.T) {
	_, up := startUpstream(t)
	e := env(t, up.URL, endUserPolicy("0.1", "reject"))
	gw := testutil.StartApp(t, e)
	c := sdk(gw, testutil.CanaryToken)
	n, _ := spendUntilRefused(t, c, "user-1")
	if err := os.WriteFile(e["CLADE_CONFIG"], []byte(endUserPolicy("0.2", "reject").YAML()), 0o600); err != nil {
		t.Fatal(err)
	}
	if status, body := post(t, gw.AdminURL+"/admin/reload", ""); status != http.StatusOK {
		t.Fatalf("reload: %d %s", status, body)
	}
	m, refusal := spendUntilRefused(t, c, "user-1")
	if m < n-1 || !strings.Contains(refusal, "daily budget of $0.2 ") {
		t.Fatalf("after raising the cap to $0.2: %d more admitted (first $0.1 took %d), refusal %s", m, n, refusal)
	}
	lv := principalLevels(t, gw.AdminURL, "support-bot")["support-bot/metadata.user_id/user-1/daily"]
	if lv.limit != money.PerUSD/5 || lv.spent > lv.limit || lv.spent < money.PerUSD/10 {
		t.Errorf("user-1 daily after reload: %+v", lv)
	}
}

type principalPage struct {
	Principals []struct {
		From     string `json:"from"`
		Value    string `json:"value"`
		Hashed   bool   `json:"hashed"`
		SpentUSD string `json:"spent_usd"`
		Budgets  []struct {
			ReservedUSD string `json:"reserved_usd"`
		} `json:"budgets"`
	} `json:"principals"`
	NextCursor *string `json:"next_cursor"`
}

func listPrincipals(t *testing.T, adminURL, service string, limit int, cursor string) principalPage {
	t.Helper()
	body := mustGetBody(t, fmt.Sprintf("%s/admin/principals?service=%s&limit=%d&cursor=%s", adminURL, service, limit, cursor))
	var p principalPage
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return p
}

func mustGetBody(t *testing.T, url string) string {
	t.Helper()
	code, body := get(t, url, testutil.AdminToken)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	return body
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testutil.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// hookSink is a webhook receiver on loopback.
type hookSink struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newHookSink(t *testing.T) *hookSink {
	h := &hookSink{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, string(b))
		h.mu.Unlock()
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookSink) count(substr string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, b := range h.bodies {
		if strings.Contains(b, substr) {
			n++
		}
	}
	return n
}

func (h *hookSink) all() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.bodies, "\n")
}

// listSettledPrincipals lists a service's principals once none of their
// budgets holds a reservation (every request has settled).
func listSettledPrincipals(t *testing.T, adminURL, service string) principalPage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := listPrincipals(t, adminURL, service, 100, "")
		held := false
		for _, r := range p.Principals {
			for _, b := range r.Budgets {
				held = held || b.ReservedUSD != "0"
			}
		}
		if !held {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("principals of %s still hold reservations after 10s: %+v", service, p.Principals)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
