// Package admin serves the admin listener: health and readiness probes,
// Prometheus metrics, and the bearer-token admin API for budgets and
// reloads. It is meant for a private port, never the API port.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/promtable"
)

// Store is the part of the budget store the admin API uses.
type Store interface {
	Status(ctx context.Context, budgets []budget.Budget) ([]budget.Status, error)
	Adjust(ctx context.Context, b budget.Budget, delta money.Nanos) error
	Ping(ctx context.Context) error
}

// Reiniter is implemented by stores that can accept a fresh epoch after
// losing their data.
type Reiniter interface {
	Reinit(ctx context.Context) error
}

// Options configure the admin handler.
type Options struct {
	Policy   func() *policy.Policy // nil result: no policy loaded yet
	Store    Store
	Reload   func() error
	Gatherer prometheus.Gatherer
	// Registerer receives the admin listener's own metrics (failed
	// authentications); nil: a private registry.
	Registerer prometheus.Registerer
	Logger     *zap.Logger // the audit trail of adjustments goes here too
	Timeout    time.Duration
	// Checklist evaluates the access-control checklist (GET
	// /admin/checklist); nil disables the endpoint.
	Checklist checklistFunc
	// Adjustments keeps adjustments for the checklist's review; nil keeps
	// them in the log only.
	Adjustments AdjustmentRecorder
	// Routes are more admin endpoints ("GET /admin/reconcile"), behind
	// the same admin token check.
	Routes map[string]http.HandlerFunc
}

type server struct {
	o        Options
	log      *zap.Logger
	authFail *prometheus.CounterVec
}

// New returns the admin listener's handler.
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	s := &server{o: o, log: o.Logger.Named("admin"), authFail: newAuthFailures(o.Registerer)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", promtable.Handler(o.Gatherer))
	mux.Handle("GET /admin/budgets", s.auth(s.budgets))
	mux.Handle("POST /admin/budgets/adjust", s.auth(s.adjust))
	mux.Handle("GET /admin/principals", s.auth(s.principals))
	mux.Handle("POST /admin/reload", s.auth(s.reload))
	mux.Handle("POST /admin/store/reinit", s.auth(s.reinit))
	mux.Handle("GET /admin/checklist", s.auth(s.checklistReport))
	for pattern, h := range o.Routes {
		mux.Handle(pattern, s.auth(h))
	}
	return mux
}

func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	if s.o.Policy() == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "no policy loaded"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.Timeout)
	defer cancel()
	if err := s.o.Store.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "budget store unavailable", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *server) auth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, reason := s.authenticate(r)
		if reason != "" {
			s.authFailed(r, reason)
			writeError(w, http.StatusUnauthorized, "authentication_error", "admin bearer token required")
			return
		}
		next(w, r.WithContext(withTokenName(r.Context(), name)))
	})
}

// budgetJSON is one budget in GET /admin/budgets. Amounts are exact
// decimal strings: a float would round a cap.
type budgetJSON struct {
	Scope       string    `json:"scope"`
	Name        string    `json:"name"`
	ID          string    `json:"id"`
	Period      string    `json:"period"`
	WindowStart *string   `json:"window_start"`
	ResetsAt    *string   `json:"resets_at"`
	LimitUSD    string    `json:"limit_usd"`
	SpentUSD    string    `json:"spent_usd"`
	ReservedUSD string    `json:"reserved_usd"`
	Remaining   string    `json:"remaining_usd"`
	Enforce     bool      `json:"enforce"`
	AlertAt     []float64 `json:"alert_at,omitempty"`
}

func (s *server) budgets(w http.ResponseWriter, r *http.Request) {
	if svc := r.URL.Query().Get("service"); svc != "" {
		s.serviceBudgets(w, r, svc)
		return
	}
	all := sortedBudgets(s.o.Policy().AllBudgets())
	ctx, cancel := context.WithTimeout(r.Context(), s.o.Timeout)
	defer cancel()
	st, err := s.o.Store.Status(ctx, all)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "api_error", "budget store unavailable: "+err.Error())
		return
	}
	out := make([]budgetJSON, 0, len(st))
	for _, x := range st {
		out = append(out, toJSON(x))
	}
	writeJSON(w, http.StatusOK, map[string]any{"budgets": out})
}

func toJSON(x budget.Status) budgetJSON {
	b := x.Budget
	j := budgetJSON{Scope: string(b.Scope), Name: b.Name, ID: b.ID, Period: string(b.Period),
		LimitUSD: b.Limit.String(), SpentUSD: x.Spent.String(), ReservedUSD: x.Reserved.String(),
		Remaining: x.Remaining().String(), Enforce: b.Enforce, AlertAt: b.AlertAt}
	if !x.WindowStart.IsZero() {
		ws, ra := x.WindowStart.UTC().Format(time.RFC3339), x.ResetsAt.UTC().Format(time.RFC3339)
		j.WindowStart, j.ResetsAt = &ws, &ra
	}
	return j
}

func sortedBudgets(bs []budget.Budget) []budget.Budget {
	sort.Slice(bs, func(i, j int) bool {
		a, b := bs[i], bs[j]
		if a.Scope != b.Scope {
			return a.Scope < b.Scope
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.ID < b.ID
	})
	return bs
}

type adjustRequest struct {
	Scope     string
	Name      string
	ID        string
	AmountUSD string // positive debits, negative credits
	Reason    string
	Actor     string // the caller's note; the audit names the token
}

func parseAdjust(r io.Reader) (adjustRequest, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return adjustRequest{}, err
	}
	m, err := decodeStrictStrings(body, "scope", "name", "id", "amount_usd", "reason", "actor")
	if err != nil {
		return adjustRequest{}, err
	}
	return adjustRequest{Scope: m["scope"], Name: m["name"], ID: m["id"], AmountUSD: m["amount_usd"],
		Reason: m["reason"], Actor: m["actor"]}, nil
}

func (s *server) adjust(w http.ResponseWriter, r *http.Request) {
	req, err := parseAdjust(http.MaxBytesReader(w, r.Body, 1<<16))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "body must be {scope, name, id, amount_usd, reason[, actor]}: "+err.Error())
		return
	}
	amt, err := money.Parse(req.AmountUSD)
	if err != nil || amt == 0 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "amount_usd must be a non-zero decimal string, e.g. \"-12.5\" to credit")
		return
	}
	if amt > budget.MaxWindowSpend || amt < -budget.MaxWindowSpend {
		writeError(w, http.StatusBadRequest, "invalid_request_error",
			fmt.Sprintf("amount_usd must be between -%s and %s", budget.MaxWindowSpend, budget.MaxWindowSpend))
		return
	}
	if strings.TrimSpace(req.Reason) == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "reason is required: adjustments are audited")
		return
	}
	b, ok := findAnyBudget(s.o.Policy(), req.Scope, req.Name, req.ID)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found_error", fmt.Sprintf("no budget %s/%s/%s in the policy", req.Scope, req.Name, req.ID))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.Timeout)
	defer cancel()
	if err := s.o.Store.Adjust(ctx, b, amt); err != nil {
		if errors.Is(err, budget.ErrAdjustRange) {
			writeError(w, http.StatusBadRequest, "invalid_request_error",
				fmt.Sprintf("nothing applied: the adjustment would take this window's spend beyond ±%s USD", budget.MaxWindowSpend))
			return
		}
		writeError(w, http.StatusServiceUnavailable, "api_error", "budget store unavailable: "+err.Error())
		return
	}
	// actor is the admin token's name in the policy: who authenticated,
	// not what the caller says; the caller's own note is kept beside it.
	s.log.Info("budget adjusted", zap.String("audit", "budget_adjust"), zap.String("scope", req.Scope),
		zap.String("name", b.Name), zap.String("id", req.ID), zap.String("amount_usd", amt.String()),
		zap.String("reason", req.Reason), zap.String("actor", tokenName(r.Context())),
		zap.String("actor_note", req.Actor), zap.String("remote", r.RemoteAddr))
	s.recordAdjustment(ctx, req, amt, tokenName(r.Context()), r.RemoteAddr)
	st, err := s.o.Store.Status(ctx, []budget.Budget{b})
	if err != nil || len(st) != 1 {
		writeJSON(w, http.StatusOK, map[string]string{"status": "adjusted"})
		return
	}
	writeJSON(w, http.StatusOK, toJSON(st[0]))
}

func findBudget(all []budget.Budget, scope, name, id string) (budget.Budget, bool) {
	for _, b := range all {
		if string(b.Scope) == scope && b.Name == name && b.ID == id {
			return b, true
		}
	}
	return budget.Budget{}, false
}

func (s *server) reload(w http.ResponseWriter, _ *http.Request) {
	if err := s.o.Reload(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "policy rejected; the running policy stays:\n"+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
}

func (s *server) reinit(w http.ResponseWriter, r *http.Request) {
	ri, ok := s.o.Store.(Reiniter)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found_error", "this store needs no re-initialisation")
		return
	}
	if err := ri.Reinit(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, "api_error", err.Error())
		return
	}
	s.log.Warn("budget store re-initialised by an operator; budgets count from zero", zap.String("audit", "store_reinit"),
		zap.String("actor", tokenName(r.Context())), zap.String("remote", r.RemoteAddr))
	writeJSON(w, http.StatusOK, map[string]string{"status": "reinitialised"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": msg}})
}
