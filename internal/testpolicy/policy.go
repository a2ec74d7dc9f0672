// Package testpolicy writes gateway policies for tests from typed values,
// so a test states the workspaces, teams, services, tokens, budgets and
// settings it needs and the YAML is always well formed. It knows the
// policy's keys, not its rules: a policy the gateway would refuse can be
// written on purpose.
//
// It imports only the standard library; tokens are given raw and written
// as the SHA-256 digests the policy stores.
package testpolicy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Policy is one policy file. Zero fields are left out, so the gateway's
// defaults apply.
type Policy struct {
	Timezone       string // timezone
	OnStoreFailure string // on_store_failure: reject or allow
	UnknownTools   string // unknown_tools: reject or allow
	FitMaxTokens   bool   // fit_max_tokens
	UnknownModel   string // pricing.unknown_model

	Workspaces []Workspace
	Teams      []Team
	Webhooks   []Webhook
	Services   []Service
	// AdminTokens are raw admin API tokens.
	AdminTokens []string
	Principals  *PrincipalSettings
	Reconcile   *Reconcile
}

// PrincipalSettings are the policy-wide principal settings.
type PrincipalSettings struct {
	HashValues bool   // hash_values
	HashKeyEnv string // hash_key_env
}

// Workspace is an Anthropic workspace and the keys the gateway holds for it.
type Workspace struct {
	Name        string
	AnthropicID string // anthropic_id
	Keys        []Key
	Budgets     []Budget
}

// Key is a workspace key read from an environment variable.
type Key struct {
	Name        string
	Env         string
	Created     string // YYYY-MM-DD; "" leaves it out
	AnthropicID string // anthropic_id
}

// Team groups services under budgets of its own.
type Team struct {
	Name    string
	Budgets []Budget
}

// Webhook receives budget notifications at the URL an environment
// variable holds.
type Webhook struct {
	Name, URLEnv, Format string
}

// Service is a caller of the gateway.
type Service struct {
	Name      string
	Team      string
	Workspace string
	// Tokens are the raw service tokens.
	Tokens     []string
	Models     []string // model patterns the service may call
	Budgets    []Budget
	RateLimit  *RateLimit
	Principals []Principal
}

// RateLimit is a service's request rate.
type RateLimit struct {
	RequestsPerSecond float64
	Burst             int
}

// Principal caps the end users (or sessions, customers) of a service, each
// value of From on its own.
type Principal struct {
	From        string // metadata.user_id, header:NAME, claude_code.user, ...
	Budgets     []Budget
	WhenMissing string // when_missing: reject or allow; "" leaves it out
	Overrides   []Override
}

// Override gives one principal value budgets of its own.
type Override struct {
	Value   string
	Budgets []Budget
}

// Reconcile configures comparison with Anthropic's usage and cost reports.
type Reconcile struct {
	AdminKeyEnv     string // admin_key: {env: ...}
	ChargeUnmetered bool
}

// Budget is a spending cap. LimitUSD is written as given (a decimal number
// of US dollars), so a test can name an exact amount.
type Budget struct {
	ID       string // "" defaults to the period
	Period   string // daily, weekly, monthly or total
	LimitUSD string
	AlertAt  []float64
}

// Daily, Weekly, Monthly and Total are budgets of that period.
func Daily(limitUSD string, alertAt ...float64) Budget { return Budget{"", "daily", limitUSD, alertAt} }
func Weekly(limitUSD string, alertAt ...float64) Budget {
	return Budget{"", "weekly", limitUSD, alertAt}
}
func Monthly(limitUSD string, alertAt ...float64) Budget {
	return Budget{"", "monthly", limitUSD, alertAt}
}
func Total(limitUSD string, alertAt ...float64) Budget { return Budget{"", "total", limitUSD, alertAt} }

// Service returns the service named name, for a test to change; it panics
// if there is none, a mistake in the test itself.
func (p *Policy) Service(name string) *Service {
	for i := range p.Services {
		if p.Services[i].Name == name {
			return &p.Services[i]
		}
	}
	panic(fmt.Sprintf("testpolicy: no service %q", name))
}

// SHA256 is the hex digest the policy stores for a token.
func SHA256(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// YAML renders the policy.
func (p Policy) YAML() string {
	var w writer
	w.scalar(0, "timezone", p.Timezone)
	w.scalar(0, "on_store_failure", p.OnStoreFailure)
	w.scalar(0, "unknown_tools", p.UnknownTools)
	if p.FitMaxTokens {
		w.line(0, "fit_max_tokens: true")
	}
	if p.UnknownModel != "" {
		w.line(0, "pricing:")
		w.scalar(1, "unknown_model", p.UnknownModel)
	}
	if len(p.Workspaces) > 0 {
		w.line(0, "workspaces:")
		for _, ws := range p.Workspaces {
			w.line(1, str(ws.Name)+":")
			w.scalar(2, "anthropic_id", ws.AnthropicID)
			if len(ws.Keys) > 0 {
				w.line(2, "keys:")
				for _, k := range ws.Keys {
					w.line(3, "- "+k.flow())
				}
			}
			w.budgets(2, "budgets", ws.Budgets)
		}
	}
	if len(p.Teams) > 0 {
		w.line(0, "teams:")
		for _, t := range p.Teams {
			if len(t.Budgets) == 0 {
				w.line(1, str(t.Name)+": {}")
				continue
			}
			w.line(1, str(t.Name)+":")
			w.budgets(2, "budgets", t.Budgets)
		}
	}
	if len(p.Webhooks) > 0 {
		w.line(0, "webhooks:")
		for _, h := range p.Webhooks {
			w.line(1, "- "+flow("name", str(h.Name), "url_env", str(h.URLEnv), "format", str(h.Format)))
		}
	}
	if len(p.Services) > 0 {
		w.line(0, "services:")
		for _, s := range p.Services {
			s.write(&w)
		}
	}
	if len(p.AdminTokens) > 0 {
		w.line(0, "admin:")
		w.tokens(1, p.AdminTokens)
	}
	if ps := p.Principals; ps != nil {
		kv := []string{"hash_values", strconv.FormatBool(ps.HashValues)}
		if ps.HashKeyEnv != "" {
			kv = append(kv, "hash_key_env", str(ps.HashKeyEnv))
		}
		w.line(0, "principals: "+flow(kv...))
	}
	if r := p.Reconcile; r != nil {
		w.line(0, "reconcile:")
		w.line(1, "admin_key: "+flow("env", str(r.AdminKeyEnv)))
		w.line(1, "charge_unmetered: "+strconv.FormatBool(r.ChargeUnmetered))
	}
	return w.b.String()
}

func (s Service) write(w *writer) {
	w.line(1, str(s.Name)+":")
	w.scalar(2, "team", s.Team)
	w.scalar(2, "workspace", s.Workspace)
	w.tokens(2, s.Tokens)
	if len(s.Models) > 0 {
		w.line(2, "models: "+list(s.Models, str))
	}
	w.budgets(2, "budgets", s.Budgets)
	if r := s.RateLimit; r != nil {
		w.line(2, "rate_limit: "+flow("requests_per_second", num(r.RequestsPerSecond), "burst", strconv.Itoa(r.Burst)))
	}
	if len(s.Principals) > 0 {
		w.line(2, "principals:")
		for _, pr := range s.Principals {
			w.line(3, "- from: "+str(pr.From))
			w.budgets(4, "budgets", pr.Budgets)
			w.scalar(4, "when_missing", pr.WhenMissing)
			if len(pr.Overrides) > 0 {
				w.line(4, "overrides:")
				for _, o := range pr.Overrides {
					w.line(5, str(o.Value)+": "+list(o.Budgets, Budget.flow))
				}
			}
		}
	}
}

func (k Key) flow() string {
	kv := []string{"name", str(k.Name), "env", str(k.Env)}
	if k.Created != "" {
		kv = append(kv, "created", str(k.Created))
	}
	if k.AnthropicID != "" {
		kv = append(kv, "anthropic_id", str(k.AnthropicID))
	}
	return flow(kv...)
}

func (b Budget) flow() string {
	var kv []string
	if b.ID != "" {
		kv = append(kv, "id", str(b.ID))
	}
	kv = append(kv, "period", str(b.Period), "limit_usd", b.LimitUSD)
	if len(b.AlertAt) > 0 {
		kv = append(kv, "alert_at", list(b.AlertAt, num))
	}
	return flow(kv...)
}

// writer accumulates block-style YAML, two spaces per level.
type writer struct{ b strings.Builder }

func (w *writer) line(level int, s string) {
	w.b.WriteString(strings.Repeat("  ", level))
	w.b.WriteString(s)
	w.b.WriteByte('\n')
}

// scalar writes key: value, or nothing for an empty value.
func (w *writer) scalar(level int, key, value string) {
	if value != "" {
		w.line(level, key+": "+str(value))
	}
}

func (w *writer) budgets(level int, key string, bs []Budget) {
	if len(bs) == 0 {
		return
	}
	w.line(level, key+":")
	for _, b := range bs {
		w.line(level+1, "- "+b.flow())
	}
}

func (w *writer) tokens(level int, raw []string) {
	if len(raw) == 0 {
		return
	}
	w.line(level, "tokens:")
	for _, t := range raw {
		w.line(level+1, "- sha256: "+str(SHA256(t)))
	}
}

// flow writes alternating keys and rendered values as {k: v, ...}.
func flow(kv ...string) string {
	parts := make([]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+": "+kv[i+1])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func list[T any](xs []T, render func(T) string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = render(x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// plain are strings YAML reads back as the same string when unquoted.
var plain = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// str renders s as a YAML string: bare when it cannot be read as anything
// else, double-quoted otherwise.
func str(s string) string {
	switch strings.ToLower(s) {
	case "true", "false", "null", "yes", "no", "on", "off", "y", "n":
		return strconv.Quote(s) // booleans or null to some YAML readers
	}
	if plain.MatchString(s) {
		return s
	}
	return strconv.Quote(s)
}
