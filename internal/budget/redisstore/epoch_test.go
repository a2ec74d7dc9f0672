package redisstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

func TestRedisRestartedEmptyIsResetUntilReinit(t *testing.T) {
	clock := storetest.NewClock(storetest.T0)
	epochFile := filepath.Join(t.TempDir(), "epoch")
	opts := storeopts.Options{Clock: clock.Now, EpochFile: epochFile, Prefix: "gw", Timeout: storetest.Timeout}
	s, srv := newPrivateStore(t, opts)
	b := storetest.Bud(budget.ScopeService, "s", budget.Daily, 10, true)
	r := storetest.MustReserve(t, s, storetest.Hold("r", 4, time.Minute, b))
	storetest.MustSettle(t, s, r, 4)
	saved, err := os.ReadFile(epochFile)
	if err != nil || !strings.HasPrefix(string(saved), "1.") {
		t.Fatalf("epoch file = %q, %v", saved, err)
	}

	// Redis restarts without persistence: 4 of 10 spent is forgotten.
	srv.Stop()
	srv.Restart()
	for op, err := range everyOp(s, r, b) {
		if !errors.Is(err, budget.ErrStoreReset) {
			t.Errorf("%s after restart: err = %v, want ErrStoreReset", op, err)
		}
	}
	// A gateway restarted with the same data dir refuses too.
	s2, err := New(redistest.Client(t, srv.Addr()), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Ping(context.Background()); !errors.Is(err, budget.ErrStoreReset) {
		t.Errorf("restarted gateway Ping = %v, want ErrStoreReset", err)
	}
	if err := s.Reinit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, st := range []*Store{s, s2} {
		if err := st.Ping(context.Background()); err != nil {
			t.Errorf("Ping after Reinit: %v", err)
		}
	}
	storetest.WantLevel(t, s2, b, 0, 0) // counted from zero again, as documented
	storetest.MustReserve(t, s2, storetest.Hold("after", 10, time.Minute, b))
	if saved2, _ := os.ReadFile(epochFile); !strings.HasPrefix(string(saved2), "2.") {
		t.Errorf("epoch file after Reinit = %q, want generation 2", saved2)
	}
}

func TestRedisFlushallIsResetUntilReinit(t *testing.T) {
	clock := storetest.NewClock(storetest.T0)
	s, srv := newPrivateStore(t, storeopts.Options{Clock: clock.Now, Timeout: storetest.Timeout})
	b := storetest.Bud(budget.ScopeTeam, "t", budget.Monthly, 10, true)
	r := storetest.MustReserve(t, s, storetest.Hold("r", 4, time.Minute, b))
	admin := redistest.Client(t, srv.Addr())
	if err := admin.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	for op, err := range everyOp(s, r, b) {
		if !errors.Is(err, budget.ErrStoreReset) {
			t.Errorf("%s after FLUSHALL: err = %v, want ErrStoreReset", op, err)
		}
	}
	// A gateway with no memory of the old epoch starts a new one; the
	// existing gateway must not take that as permission to continue.
	fresh, err := New(redistest.Client(t, srv.Addr()), storeopts.Options{Clock: clock.Now, Timeout: storetest.Timeout})
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Ping(context.Background()); err != nil {
		t.Fatalf("fresh gateway: %v", err)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, budget.ErrStoreReset) {
		t.Errorf("old gateway after a fresh epoch appeared: %v, want ErrStoreReset", err)
	}
	if n, _ := admin.DBSize(context.Background()).Result(); n != 1 {
		t.Errorf("scripts refused by the epoch check wrote keys: dbsize %d, want 1 (the epoch)", n)
	}
	// The operator re-initialises through one gateway; both resume.
	if err := s.Reinit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Ping(context.Background()); err != nil {
		t.Errorf("other gateway after Reinit: %v", err)
	}
	storetest.MustReserve(t, fresh, storetest.Hold("r2", 10, time.Minute, b))
}

func TestRedisExpectEpoch(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s, err := New(redistest.Client(t, srv.Addr()), storeopts.Options{ExpectEpoch: "7.feedface", Timeout: storetest.Timeout})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); !errors.Is(err, budget.ErrStoreReset) {
		t.Errorf("Ping with an expected epoch absent from Redis = %v, want ErrStoreReset", err)
	}
	if err := s.Reinit(ctx); err != nil {
		t.Fatal(err)
	}
	e, _ := redistest.Client(t, srv.Addr()).Get(ctx, "{clade}:epoch").Result()
	if !strings.HasPrefix(e, "8.") {
		t.Errorf("epoch after Reinit = %q, want generation 8", e)
	}
	if err := s.Ping(ctx); err != nil {
		t.Error(err)
	}
}
