package policy

import (
	"crypto/sha256"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
)

// The raw* types are a parsed policy before cross-references are checked:
// every value that another part of the policy (or another file) can
// contradict keeps the place it was written, so the problem can name it.

// ref is a name that must resolve to something defined elsewhere.
type ref struct {
	name string
	at   pos
}

type rawPolicy struct {
	loc            *time.Location // top-level timezone; nil means UTC
	onStoreFailure FailureMode
	unknownTools   UnknownTools
	estimate       money.Nanos
	fit            rawFit
	workspaces     []*rawWorkspace
	teams          []*rawTeam
	services       []*rawService
	admin          []rawToken
	pricing        Pricing
	webhooks       []rawWebhook
	principals     rawPrincipalSettings
	reconcile      *Reconcile
}

type rawWorkspace struct {
	at      pos
	name    string
	keys    []rawKey
	teams   []ref
	budgets []rawBudget
	env     Environment

	anthropicID string
}

type rawTeam struct {
	at      pos
	name    string
	budgets []rawBudget
}

type rawService struct {
	at             pos
	name           string
	team           ref
	workspace      ref
	tokens         []rawToken
	models         []string
	budgets        []rawBudget
	rateLimit      *RateLimit
	onStoreFailure FailureMode // empty: inherit the policy's
	fit            rawFit
	principals     []rawPrincipal
}

// rawFit is fit_max_tokens and min_max_tokens as written; nil: not given.
type rawFit struct {
	enabled *bool
	min     *int64
}

type rawBudget struct {
	b   budget.Budget  // everything but Location
	loc *time.Location // nil: inherit the policy's timezone
}

type rawToken struct {
	at     pos
	name   string // optional; admin tokens are named in the audit trail
	digest [sha256.Size]byte
}

// secretRef says where a secret lives: exactly one of env and file is set.
// file is already resolved against the directory of the policy file.
type secretRef struct {
	at        pos
	env, file string
}

type rawKey struct {
	at      pos
	name    string
	secret  secretRef
	created time.Time

	anthropicID string
}

type rawWebhook struct {
	at     pos
	name   string
	url    secretRef
	format string
}
