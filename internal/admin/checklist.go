package admin

import (
	"context"
	"net/http"

	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/checklist"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/trail"
)

// AdjustmentRecorder keeps budget adjustments for the checklist's review;
// trail.AdjustmentLog implements it.
type AdjustmentRecorder interface {
	RecordAdjustment(ctx context.Context, a trail.Adjustment) error
}

// checklistReport serves GET /admin/checklist: the same report as the
// checklist command with --format json, on the running policy and store.
func (s *server) checklistReport(w http.ResponseWriter, r *http.Request) {
	if s.o.Checklist == nil {
		writeError(w, http.StatusNotFound, "not_found_error", "the checklist is not enabled on this gateway")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.Timeout)
	defer cancel()
	rep := s.o.Checklist(ctx)
	if rep == nil {
		writeError(w, http.StatusServiceUnavailable, "api_error", "no policy loaded")
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// recordAdjustment keeps an applied adjustment for review. The adjustment
// stands either way, and the audit log line has it; a failure here only
// means the checklist will not list it.
// recordAdjustment keeps an adjustment for review; actor is the admin
// token's name, not what the caller wrote.
func (s *server) recordAdjustment(ctx context.Context, req adjustRequest, amt money.Nanos, actor, remote string) {
	if s.o.Adjustments == nil {
		return
	}
	err := s.o.Adjustments.RecordAdjustment(ctx, trail.Adjustment{Scope: req.Scope, Name: req.Name, ID: req.ID,
		AmountUSD: amt.String(), Reason: req.Reason, Actor: actor, Remote: remote})
	if err != nil {
		s.log.Error("budget adjusted but not recorded for the checklist's review; the audit log line above has it",
			zap.String("scope", req.Scope), zap.String("name", req.Name), zap.String("id", req.ID), zap.Error(err))
	}
}

var _ AdjustmentRecorder = trail.AdjustmentLog{}

// checklistFunc is the type of Options.Checklist.
type checklistFunc = func(ctx context.Context) *checklist.Report
