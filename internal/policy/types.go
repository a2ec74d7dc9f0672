// Package policy loads, validates and compiles the policy: workspaces and
// their keys, teams, services and their tokens, budgets, pricing overrides
// and admin access. A Policy is immutable once compiled; reloads build a new
// one and swap it in whole.
package policy

import (
	"crypto/sha256"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
)

// FailureMode says what admission does when the budget store is unreachable.
type FailureMode string

// Failure modes.
const (
	FailReject FailureMode = "reject" // 503, nothing forwarded (default)
	FailAllow  FailureMode = "allow"  // forward, journal the usage, replay later
)

// UnknownModel says what happens to a model the price table does not know.
type UnknownModel string

// Unknown-model policies.
const (
	UnknownReject    UnknownModel = "reject"     // 403 before any hold (default)
	UnknownChargeMax UnknownModel = "charge_max" // priced as the dearest model
)

// Environment is what a workspace's keys serve.
type Environment string

// Environments a workspace may declare.
const (
	EnvProduction  Environment = "production"
	EnvStaging     Environment = "staging"
	EnvDevelopment Environment = "development"
)

// UnknownTools says what admission does with a tool type the gateway does
// not know, whose server-side cost it cannot bound.
type UnknownTools string

// Unknown-tool policies.
const (
	UnknownToolsReject UnknownTools = "reject" // 400 before any hold (default)
	UnknownToolsAllow  UnknownTools = "allow"  // forwarded; the server tool allowance is added
)

// Secret is a credential read at load time. It never prints.
type Secret string

func (Secret) String() string   { return "<secret>" }
func (Secret) GoString() string { return "<secret>" }

// MarshalText keeps secrets out of any JSON, YAML or zap output.
func (Secret) MarshalText() ([]byte, error) { return []byte("<secret>"), nil }

// Policy is a compiled, validated policy.
type Policy struct {
	Workspaces map[string]*Workspace
	Teams      map[string]*Team
	Services   map[string]*Service

	OnStoreFailure FailureMode
	UnknownTools   UnknownTools
	Pricing        Pricing
	Webhooks       []Webhook
	Estimate       Estimate
	AdminTokens    []Token
	// Fit is the default of fit_max_tokens and min_max_tokens.
	Fit Fit
	// HashPrincipals is principals.hash_values: principal values are
	// stored and shown only as keyed hashes.
	HashPrincipals bool
	Reconcile      Reconcile

	tokens      map[[sha256.Size]byte]*Service
	adminTokens map[[sha256.Size]byte]struct{}
	adminNames  map[[sha256.Size]byte]string
}

// Workspace is an Anthropic workspace the gateway holds keys for.
type Workspace struct {
	Name    string
	Keys    []Key // Keys[0] is used; the rest are kept during rotation
	Budgets []budget.Budget
	// Teams lists who may use this workspace; empty means every team.
	Teams []string
	// Environment is "" when the policy does not say.
	Environment Environment
	// AnthropicID is the workspace's ID in the Admin API ("wrkspc_…").
	AnthropicID string
}

// Key is one Anthropic API key of a workspace.
type Key struct {
	Name    string // a label for logs and metrics, never the key itself
	Secret  Secret
	Created time.Time // zero when the policy does not say
	// Env or File says where Secret is read from (a variable name, or a
	// path resolved against the policy file): names, never the secret.
	Env, File string
	// AnthropicID is the key's ID in the Admin API ("apikey_…").
	AnthropicID string
}

// Token is one service or admin token, known only by its sha256.
type Token struct {
	Name   string // "" when the policy does not say
	SHA256 [sha256.Size]byte
}

// Team owns services and has budgets of its own.
type Team struct {
	Name    string
	Budgets []budget.Budget
}

// Service is one caller of the gateway.
type Service struct {
	Name      string
	Team      *Team
	Workspace *Workspace
	// Models is an allowlist of globs (path.Match); empty allows all.
	Models    []string
	Budgets   []budget.Budget
	RateLimit *RateLimit
	// OnStoreFailure is the service's override, or the policy default.
	OnStoreFailure FailureMode
	Tokens         []Token
	// Fit is the service's override of each field, or the policy default.
	Fit Fit
	// Principals are caps per caller inside the service, in policy order.
	Principals []*Principal
}

// DefaultMinMaxTokens is min_max_tokens when the policy does not say.
const DefaultMinMaxTokens = 1024

// Fit says whether a request whose worst case does not fit its budgets is
// forwarded with a lower max_tokens that fits, and how low it may go.
type Fit struct {
	Enabled bool // fit_max_tokens
	// MinMaxTokens (min_max_tokens) is the smallest max_tokens worth
	// forwarding; below it the request is refused. It is also the smallest
	// useful request a refusal's "has reached" is judged by.
	MinMaxTokens int64
}

// RateLimit is a per-service token bucket, per replica.
type RateLimit struct {
	RequestsPerSecond float64
	Burst             int
}

// Pricing holds the operator's price overrides.
type Pricing struct {
	Models       map[string]ModelPrice
	UnknownModel UnknownModel
	// Discount multiplies every price (a negotiated rate), in billionths:
	// 0.9 is 900,000,000. Zero means none (1).
	Discount money.Nanos
}

// ModelPrice is USD per million tokens, as exact nano-USD per MTok.
type ModelPrice struct {
	Input, Output, CacheWrite5m, CacheWrite1h, CacheRead money.Nanos
}

// Webhook receives budget threshold notifications.
type Webhook struct {
	Name   string
	URL    Secret // webhook URLs embed credentials (Slack)
	Format string // "slack" (default) or "json"
}

// Estimate tunes the admission estimate for requests that can grow on the
// server side (server tools, file references).
type Estimate struct {
	// ServerToolAllowance is added to the estimate of a request that
	// declares server tools or references files.
	ServerToolAllowance money.Nanos
}

// AllBudgets returns every budget a request by s must fit: the service's, its
// team's and its workspace's, in that order.
func (s *Service) AllBudgets() []budget.Budget {
	out := make([]budget.Budget, 0, len(s.Budgets)+len(s.Team.Budgets)+len(s.Workspace.Budgets))
	out = append(out, s.Budgets...)
	out = append(out, s.Team.Budgets...)
	return append(out, s.Workspace.Budgets...)
}

// ServiceByToken finds the service a raw token belongs to by its sha256.
// Map lookup on a digest leaks nothing useful through timing: an attacker
// controls the preimage, not the digest.
func (p *Policy) ServiceByToken(token string) (*Service, bool) {
	return p.ServiceByDigest(sha256.Sum256([]byte(token)))
}

// ServiceByDigest finds the service whose token has this sha256, for callers
// that keep the digest (the proxy records which token was used by it).
func (p *Policy) ServiceByDigest(digest [sha256.Size]byte) (*Service, bool) {
	s, ok := p.tokens[digest]
	return s, ok
}

// IsAdminToken reports whether token is one of admin.tokens.
func (p *Policy) IsAdminToken(token string) bool {
	_, ok := p.adminTokens[sha256.Sum256([]byte(token))]
	return ok
}

// AdminTokenName returns the name the audit trail gives an admin token:
// its name in the policy, or "sha256:" and the first 12 hex digits of its
// digest when it has none (the digest is in the policy already; the token
// never appears).
func (p *Policy) AdminTokenName(token string) (string, bool) {
	n, ok := p.adminNames[sha256.Sum256([]byte(token))]
	return n, ok
}

// AllBudgets lists every budget in the policy: services, teams, workspaces.
func (p *Policy) AllBudgets() []budget.Budget {
	var out []budget.Budget
	for _, s := range p.Services {
		out = append(out, s.Budgets...)
	}
	for _, t := range p.Teams {
		out = append(out, t.Budgets...)
	}
	for _, w := range p.Workspaces {
		out = append(out, w.Budgets...)
	}
	return out
}
