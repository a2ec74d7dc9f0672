package boltstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget/storemetrics"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStoreMetrics(t *testing.T) {
	storetest.StoreMetrics(t, func(t *testing.T, opts storeopts.Options) budget.Store {
		s, err := Open(filepath.Join(t.TempDir(), "b.db"), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestStoreErrorsCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := Open(filepath.Join(t.TempDir(), "b.db"), storeopts.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	_, err = s.Reserve(context.Background(), storetest.Hold("x", 1, time.Minute, storetest.Bud(budget.ScopeService, "e", budget.Daily, 10, true)))
	if !errors.Is(err, budget.ErrUnavailable) {
		t.Fatalf("Reserve on a closed store = %v, want ErrUnavailable", err)
	}
	var want strings.Builder
	want.WriteString(`# HELP clade_gateway_store_errors_total Budget store operations that failed (unreachable, timed out, or lost data); refusals are not errors. Bounded by the store operations, each exported from the start.
# TYPE clade_gateway_store_errors_total counter
`)
	for _, op := range storemetrics.Ops() {
		n := 0
		if op == "reserve" {
			n = 1
		}
		fmt.Fprintf(&want, "clade_gateway_store_errors_total{op=%q} %d\n", op, n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want.String()), "clade_gateway_store_errors_total"); err != nil {
		t.Error(err)
	}
}

// TestStoreErrorsStartAtZero: before any operation, each store exports an
// error series for every operation and an overshoot series for every
// scope, at zero.
func TestStoreErrorsStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := Open(filepath.Join(t.TempDir(), "b.db"), storeopts.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := testutil.CollectAndCount(reg, "clade_gateway_store_errors_total"); n != len(storemetrics.Ops()) {
		t.Errorf("%d error series, want one per operation (%d)", n, len(storemetrics.Ops()))
	}
	if n := testutil.CollectAndCount(reg, "clade_gateway_budget_overshoot_usd_total"); n != 4 {
		t.Errorf("%d overshoot series, want one per scope (4)", n)
	}
}

// TestStoreOpsListed: every operation the stores observe is one
// storemetrics.Ops lists, so its error series exists from the start.
func TestStoreOpsListed(t *testing.T) { storetest.OpsListed(t) }
