package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// LockName is the store lease that lets one process at a time reconcile
// in the background and charge unmetered spend.
const LockName = "reconcile"

// chargeKind is the store record kind that remembers what was charged per
// finding, so a rerun charges nothing twice.
const chargeKind = "reconcile-charge"

// ChargeStore is what charging unmetered spend needs of the budget store.
type ChargeStore interface {
	Adjust(ctx context.Context, b budget.Budget, delta money.Nanos) error
	GetRecord(ctx context.Context, kind, id string) ([]byte, bool, error)
	PutRecord(ctx context.Context, kind, id string, v []byte) error
}

// chargeRecord is what was charged for one finding. Pending means the
// charge was started and its outcome is unknown: it is never repeated
// automatically (that could charge twice) and is reported instead.
type chargeRecord struct {
	Amount  money.Nanos `json:"amount"`
	Pending bool        `json:"pending,omitempty"`
	At      time.Time   `json:"at"`
}

// ChargeUnmetered charges the unmetered spend of closed days, beyond the
// tolerance, to the budgets of the workspace it was found in: once per
// finding (day, workspace, key, model) across runs and replicas; a finding
// that grew since it was charged is charged the difference. Each charge is
// an audited adjustment. The caller must hold LockName.
func ChargeUnmetered(ctx context.Context, s ChargeStore, pol *policy.Policy, rep Report, now time.Time, log *zap.Logger) (charged money.Nanos, err error) {
	var errs []error
	for _, f := range rep.Findings {
		if f.Kind != Unmetered || !f.Final || !f.Exceeds || f.DriftUSD <= 0 {
			continue
		}
		ws, ok := pol.Workspaces[f.Workspace]
		if !ok || len(ws.Budgets) == 0 {
			continue
		}
		n, err := chargeOne(ctx, s, ws, f, now, log)
		charged += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return charged, errors.Join(errs...)
}

func chargeOne(ctx context.Context, s ChargeStore, ws *policy.Workspace, f Finding, now time.Time, log *zap.Logger) (money.Nanos, error) {
	id := f.Date + "|" + f.Workspace + "|" + f.Key + "|" + f.Model
	var prev chargeRecord
	v, ok, err := s.GetRecord(ctx, chargeKind, id)
	if err != nil {
		return 0, fmt.Errorf("charge unmetered %s: %w", id, err)
	}
	if ok {
		if err := json.Unmarshal(v, &prev); err != nil {
			return 0, fmt.Errorf("charge unmetered %s: bad record: %w", id, err)
		}
	}
	if prev.Pending {
		return 0, fmt.Errorf("charge unmetered %s: a charge of %s USD was started and may not have completed; check the budgets and the audit log, then adjust by hand", id, prev.Amount)
	}
	delta := money.Nanos(f.DriftUSD) - prev.Amount
	if delta <= 0 {
		return 0, nil
	}
	put := func(r chargeRecord) error {
		b, _ := json.Marshal(r)
		return s.PutRecord(ctx, chargeKind, id, b)
	}
	if err := put(chargeRecord{Amount: prev.Amount + delta, Pending: true, At: now}); err != nil {
		return 0, fmt.Errorf("charge unmetered %s: %w", id, err)
	}
	for _, b := range ws.Budgets {
		if err := s.Adjust(ctx, b, delta); err != nil {
			return 0, fmt.Errorf("charge unmetered %s to %s: %w", id, b.Label(), err)
		}
		log.Info("budget adjusted", zap.String("audit", "reconcile_unmetered"), zap.String("scope", string(b.Scope)),
			zap.String("name", b.Name), zap.String("id", b.ID), zap.String("amount_usd", delta.String()),
			zap.String("reason", "unmetered spend found by reconciliation"), zap.String("date", f.Date),
			zap.String("key", f.Key), zap.String("model", f.Model), zap.String("actor", "reconcile"))
	}
	if err := put(chargeRecord{Amount: prev.Amount + delta, At: now}); err != nil {
		return delta, fmt.Errorf("charge unmetered %s: charged, but not recorded: %w", id, err)
	}
	return delta, nil
}
