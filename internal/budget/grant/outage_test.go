package grant_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/grant"
	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestGrantFailingStepsWarnOncePerInterval(t *testing.T) {
	srv := redistest.Start(t)
	h := newGrantHarness(t, srv.Addr())
	core, logs := observer.New(zap.InfoLevel)
	h.opts.Logger = zap.New(core)
	h.opts.Timeout = 50 * time.Millisecond
	svc := storetest.Bud(budget.ScopeService, "outage", budget.Daily, 1_000_000, true)
	g := h.replica(t)
	defer g.Close()
	r := storetest.MustReserve(t, g, storetest.Hold("before", 10, time.Minute, svc))
	srv.Signal(syscall.SIGSTOP)
	defer srv.Signal(syscall.SIGCONT)
	ctx := context.Background()
	for range 12 { // 12 s of the fake clock, a step each second
		if err := grant.StepNow(ctx, g, r); err == nil {
			t.Fatal("a step succeeded with Redis paused")
		}
		h.clock.Add(time.Second)
	}
	failing := logs.FilterMessageSnippet("grant step failed").All()
	if len(failing) != 2 {
		t.Fatalf("%d warnings over 12 s of failing steps, want 2 (at the start and 10 s later)", len(failing))
	}
	if n := failing[1].ContextMap()["failed_in_a_row"].(int64); n < 11 {
		t.Errorf("second warning counts %d failed steps, want at least 11", n)
	}
	srv.Signal(syscall.SIGCONT)
	h.opts.Timeout = storetest.Timeout
	deadline := time.Now().Add(storetest.Timeout)
	for grant.StepNow(ctx, g, r) != nil {
		if time.Now().After(deadline) {
			t.Fatal("steps still fail after Redis resumed")
		}
	}
	if n := logs.FilterMessageSnippet("succeed again").Len(); n != 1 {
		t.Errorf("%d recovery messages, want 1", n)
	}
	storetest.MustSettle(t, g, r, 7)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.WantLevel(t, h.plain, svc, 7, 0)
}
