// Package fakeadmin is a stand-in for the Anthropic Admin API's usage and
// cost reports (GET /v1/organizations/usage_report/messages and
// /v1/organizations/cost_report) that speaks their wire format: time
// buckets (1m, 1h, 1d) with their limits, group_by[] dimensions (null when
// not grouped), page/next_page/has_more pagination, amounts as decimal
// strings of cents, 401 for a wrong key and 429 with retry-after when told
// to. It reports what the fake upstream answered (fakeupstream.Answered),
// attributed to workspace and API key IDs, plus spend injected as if made
// elsewhere: directly with a key, from the Console, or by code execution.
package fakeadmin

import (
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// KeyInfo is what the Admin API knows about one API key.
type KeyInfo struct {
	APIKeyID    string
	WorkspaceID string // "" for the default workspace
}

// Usage is one billable response as the Admin API attributes it.
type Usage struct {
	At          time.Time
	APIKeyID    string // "" for Console or Workbench use
	WorkspaceID string
	Model       string
	Tokens      fakeupstream.Usage
	Speed       string
}

// Cost is a charge the usage report does not carry (code execution).
type Cost struct {
	Day         time.Time // UTC midnight
	WorkspaceID string
	CostType    string // "code_execution", ...
	Description string
	Amount      money.Nanos
}

// Server is the fake Admin API. Set its fields before serving.
type Server struct {
	// AdminKey is the only x-api-key accepted.
	AdminKey string
	// Upstream is the fake upstream whose answers are billed; Keys maps
	// the workspace keys it saw to their IDs.
	Upstream *fakeupstream.Server
	Keys     map[string]KeyInfo
	// Prices is what Anthropic bills at (the cost report); a table other
	// than the gateway's shows as price drift.
	Prices *pricing.Table

	mu       sync.Mutex
	usage    []Usage
	costs    []Cost
	fail     []failure
	requests int
}

type failure struct {
	status     int
	retryAfter string
}

// New returns a fake Admin API accepting adminKey.
func New(adminKey string, up *fakeupstream.Server, keys map[string]KeyInfo, prices *pricing.Table) *Server {
	return &Server{AdminKey: adminKey, Upstream: up, Keys: keys, Prices: prices}
}

// InjectUsage adds usage the gateway never saw.
func (s *Server) InjectUsage(u Usage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.usage = append(s.usage, u)
}

// InjectCost adds a cost-report-only charge.
func (s *Server) InjectCost(c Cost) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.costs = append(s.costs, c)
}

// FailNext makes the next n report requests fail with status (429, 500,
// ...), with a retry-after header when retryAfter is not empty.
func (s *Server) FailNext(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fail = append(s.fail, failure{status, retryAfter})
	}
}

// SetPrices replaces the table Anthropic bills at.
func (s *Server) SetPrices(t *pricing.Table) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Prices = t
}

// Requests counts report requests, failed ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	var f *failure
	if len(s.fail) > 0 {
		f = &s.fail[0]
		s.fail = s.fail[1:]
	}
	s.mu.Unlock()
	switch {
	case r.Header.Get("X-Api-Key") != s.AdminKey || s.AdminKey == "":
		writeErr(w, http.StatusUnauthorized, "authentication_error", "invalid x-api-key")
		return
	case r.Header.Get("Anthropic-Version") == "":
		writeErr(w, http.StatusBadRequest, "invalid_request_error", "anthropic-version header is required")
		return
	case r.Method != http.MethodGet:
		writeErr(w, http.StatusMethodNotAllowed, "invalid_request_error", "method not allowed")
		return
	case f != nil:
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		typ := map[int]string{429: "rate_limit_error", 529: "overloaded_error"}[f.status]
		if typ == "" {
			typ = "api_error"
		}
		writeErr(w, f.status, typ, "fake admin failure")
		return
	}
	switch r.URL.Path {
	case "/v1/organizations/usage_report/messages":
		s.serveUsage(w, r)
	case "/v1/organizations/cost_report":
		s.serveCost(w, r)
	default:
		writeErr(w, http.StatusNotFound, "not_found_error", "Not found")
	}
}

// snapshot returns all usage: the upstream's answers, attributed, then the
// injected usage, in time order.
func (s *Server) snapshot() ([]Usage, []Cost, *pricing.Table) {
	var all []Usage
	if s.Upstream != nil {
		for _, a := range s.Upstream.Answered() {
			k := s.Keys[a.Key]
			all = append(all, Usage{At: a.At, APIKeyID: k.APIKeyID, WorkspaceID: k.WorkspaceID, Model: a.Model, Tokens: a.Usage})
		}
	}
	s.mu.Lock()
	all = append(all, s.usage...)
	costs := append([]Cost(nil), s.costs...)
	prices := s.Prices
	s.mu.Unlock()
	sort.SliceStable(all, func(i, j int) bool { return all[i].At.Before(all[j].At) })
	return all, costs, prices
}

func tierOf(u Usage) string {
	if u.Tokens.ServiceTier == "" {
		return "standard"
	}
	return u.Tokens.ServiceTier
}

func geoOf(u Usage) string {
	if u.Tokens.InferenceGeo == "" {
		return "global"
	}
	return u.Tokens.InferenceGeo
}

func speedOf(u Usage) string {
	if u.Speed == "" {
		return "standard"
	}
	return u.Speed
}

// groupBy reads group_by[] and checks each against allowed.
func groupBy(r *http.Request, allowed ...string) (map[string]bool, string) {
	out := map[string]bool{}
	for _, g := range append(r.URL.Query()["group_by[]"], r.URL.Query()["group_by"]...) {
		ok := false
		for _, a := range allowed {
			ok = ok || a == g
		}
		if !ok {
			return nil, "group_by: unknown dimension " + g + " (allowed: " + strings.Join(allowed, ", ") + ")"
		}
		out[g] = true
	}
	return out, ""
}
