package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/checklist"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/trail"
)

type failingRecorder struct{}

func (failingRecorder) RecordAdjustment(context.Context, trail.Adjustment) error {
	return errors.New("store unavailable")
}

// checklistSetup serves a small policy on an embedded store. With
// withChecklist, GET /admin/checklist evaluates it against that store; rec
// (nil: none) builds the adjustment recorder on it.
func checklistSetup(t *testing.T, withChecklist bool, rec func(*boltstore.Store) AdjustmentRecorder) (http.Handler, *observer.ObservedLogs) {
	t.Helper()
	dir := t.TempDir()
	sum := sha256.Sum256([]byte(adminToken))
	src := `
workspaces:
  production: {keys: [{name: prod-search, env: KEY}]}
teams:
  search: {budgets: [{period: monthly, limit_usd: 5000}]}
services:
  search-api: {team: search, workspace: production}
admin:
  tokens: [{sha256: "` + hex.EncodeToString(sum[:]) + `", name: ops}]
`
	path := filepath.Join(dir, "clade.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(path, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(dir, "b.db"), storeopts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	core, logs := observer.New(zap.InfoLevel)
	o := Options{Policy: func() *policy.Policy { return p }, Store: st, Reload: func() error { return nil },
		Gatherer: prometheus.NewRegistry(), Logger: zap.New(core)}
	if withChecklist {
		o.Checklist = func(ctx context.Context) *checklist.Report {
			return checklist.Evaluate(ctx, p, checklist.Options{AdminListen: "127.0.0.1:9090", Live: trail.Reader{Records: st}})
		}
	}
	if rec != nil {
		o.Adjustments = rec(st)
	}
	return New(o), logs
}

func TestChecklistEndpointDisabled(t *testing.T) {
	h, _ := checklistSetup(t, false, nil)
	if w := do(h, "GET", "/admin/checklist", adminToken, ""); w.Code != http.StatusNotFound {
		t.Errorf("without a checklist: %d", w.Code)
	}
}

// An adjustment made through the admin API is recorded and listed for
// review by GET /admin/checklist.
func TestChecklistEndpointListsAdjustments(t *testing.T) {
	h, _ := checklistSetup(t, true, func(st *boltstore.Store) AdjustmentRecorder {
		return trail.AdjustmentLog{Records: st, Now: time.Now}
	})
	if w := do(h, "GET", "/admin/checklist", "", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("without the admin token: %d", w.Code)
	}
	if w := do(h, "POST", "/admin/budgets/adjust", adminToken,
		`{"scope":"team","name":"search","id":"monthly","amount_usd":"-1.5","reason":"refund","actor":"alice"}`); w.Code != http.StatusOK {
		t.Fatalf("adjust: %d %s", w.Code, w.Body)
	}
	w := do(h, "GET", "/admin/checklist", adminToken, "")
	var rep checklist.Report
	if err := json.Unmarshal(w.Body.Bytes(), &rep); w.Code != 200 || err != nil || len(rep.Items) != len(checklist.Items()) || !rep.Live {
		t.Fatalf("GET /admin/checklist: %d %v %s", w.Code, err, w.Body)
	}
	for _, it := range rep.Items {
		if it.ID == checklist.ItemBudgetAdjustments {
			if it.Status != checklist.Warn || len(it.Details) != 1 || !strings.Contains(it.Details[0], "team/search/monthly adjusted by -1.5 USD by ops from 192.0.2.1:1234, reason: refund") {
				t.Errorf("budget_adjustments: %+v", it)
			}
		}
	}
}

func TestAdjustmentStandsWhenNotRecorded(t *testing.T) {
	h, logs := checklistSetup(t, false, func(*boltstore.Store) AdjustmentRecorder { return failingRecorder{} })
	w := do(h, "POST", "/admin/budgets/adjust", adminToken,
		`{"scope":"team","name":"search","id":"monthly","amount_usd":"-1","reason":"refund","actor":"alice"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("adjust: %d %s", w.Code, w.Body)
	}
	if n := logs.FilterMessageSnippet("not recorded for the checklist's review").Len(); n != 1 {
		t.Errorf("%d log lines about the unrecorded adjustment, want 1", n)
	}
}
