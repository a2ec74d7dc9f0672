package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/notify"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/proxy"
	"github.com/clade-gateway/clade-gateway/internal/reconcile"
)

// reconcileTimeout bounds an on-demand reconciliation: several pages of
// the Admin API, with backoff.
const reconcileTimeout = 2 * time.Minute

// startReconciler runs the background reconciliation when this replica
// has the admin key, and returns the handler of GET /admin/reconcile.
// Without the key (not configured, or not given to this replica) it does
// nothing: replicas that do not reconcile never need the key.
func startReconciler(ctx context.Context, loops *sync.WaitGroup, cfg config, st store, rl *reloader, getenv func(string) string,
	notifier *notify.Notifier, log *zap.Logger, reg prometheus.Registerer) http.HandlerFunc {
	rs, ok := st.(reconcile.LoopStore)
	pol := rl.policy()
	_, keyErr := pol.Reconcile.AdminKey.Resolve(getenv, os.ReadFile)
	if !ok || !pol.Reconcile.Enabled() || keyErr != nil {
		if pol.Reconcile.Enabled() && keyErr != nil {
			log.Info("reconciliation off on this replica", zap.Error(keyErr))
		}
		return func(w http.ResponseWriter, _ *http.Request) {
			writeReconcileError(w, http.StatusNotFound, "not_found_error",
				"reconciliation is not configured on this replica (reconcile.admin_key in the policy, and the key in its environment)")
		}
	}
	source := func() (reconcile.Source, error) {
		state := rl.current()
		reports, err := adminReports(cfg, state.Policy, getenv)
		if err != nil {
			return reconcile.Source{}, err
		}
		return reconcile.Source{Policy: state.Policy, Prices: pricerOf(state.Prices), Ledger: rs, Reports: reports}, nil
	}
	loop := reconcile.NewLoop(reconcile.LoopOptions{Source: source, Store: rs, Interval: cfg.ReconcileInterval,
		Logger: log, Registerer: reg, OnUnmetered: func(f reconcile.Finding) {
			log.Error("unmetered spend found: a gateway key may be used behind the gateway's back",
				zap.String("date", f.Date), zap.String("workspace", f.Workspace), zap.String("key", f.Key),
				zap.String("model", f.Model), zap.String("anthropic_usd", f.AnthropicUSD.String()),
				zap.String("drift_usd", f.DriftUSD.String()))
			if notifier != nil {
				notifier.Announce(ctx, unmeteredAnnouncement(f))
			}
		}})
	loops.Go(func() { loop.Run(ctx) })
	log.Info("reconciliation on", zap.Duration("interval", cfg.ReconcileInterval))
	return func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		from, to := reconcile.DefaultRange(now)
		var err error
		if s := r.URL.Query().Get("from"); s != "" {
			from, err = reconcile.ParseDay(s)
		}
		if s := r.URL.Query().Get("to"); s != "" && err == nil {
			to, err = reconcile.ParseDay(s)
		}
		if err != nil {
			writeReconcileError(w, http.StatusBadRequest, "invalid_request_error", "from and to: "+err.Error())
			return
		}
		src, err := source()
		if err != nil {
			writeReconcileError(w, http.StatusServiceUnavailable, "api_error", err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), reconcileTimeout)
		defer cancel()
		rep, err := reconcile.Run(ctx, src, from, to, now)
		if err != nil {
			status := http.StatusBadGateway
			if errors.Is(err, policy.ErrNoAdminKey) {
				status = http.StatusServiceUnavailable
			}
			writeReconcileError(w, status, "api_error", err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rep)
	}
}

// unmeteredAnnouncement is the webhook message for unmetered spend, sent
// once per finding and amount.
func unmeteredAnnouncement(f reconcile.Finding) notify.Announcement {
	who := "with no key (Console or Workbench)"
	if f.Key != "" {
		who = "on key " + strconv.Quote(f.Key)
	}
	return notify.Announcement{
		Event: "reconcile_unmetered",
		Key:   f.Date + "|" + f.Workspace + "|" + f.Key + "|" + f.Model + "|" + f.DriftUSD.String(),
		Text: fmt.Sprintf("Unmetered spend: Anthropic billed %s USD in workspace %q %s for %s on %s that did not go through the gateway. Run `clade-gateway reconcile`; if a gateway key was used directly, rotate it.",
			f.DriftUSD, f.Workspace, who, f.Model, f.Date),
		Fields: map[string]string{"date": f.Date, "workspace": f.Workspace, "key": f.Key, "model": f.Model,
			"anthropic_usd": f.AnthropicUSD.String(), "drift_usd": f.DriftUSD.String()},
		Keep: 400 * 24 * time.Hour,
	}
}

// pricerOf gives reconciliation the running price table.
func pricerOf(p proxy.Pricer) reconcile.Pricer {
	if rp, ok := p.(reconcile.Pricer); ok {
		return rp
	}
	return noAliases{p}
}

type noAliases struct{ proxy.Pricer }

func (noAliases) Canonical(string) (string, bool) { return "", false }

func writeReconcileError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": msg}})
}
