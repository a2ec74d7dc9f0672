package budgetstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"
	"github.com/clade-gateway/clade-gateway/internal/testproc"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// newPrivateStore returns a store on its own redis-server, for tests that
// stop or empty the server.
func newPrivateStore(t *testing.T, opts storeopts.Options) (*RedisStore, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t)
	s, err := NewRedis(redistest.Client(t, srv.Addr()), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, srv
}

// everyOp runs each store operation once and returns their errors by name.
func everyOp(s *RedisStore, r budget.Reservation, b budget.Budget) map[string]error {
	ctx := context.Background()
	_, reserveErr := s.Reserve(ctx, storetest.Hold("probe", 1, time.Minute, b))
	_, statusErr := s.Status(ctx, []budget.Budget{b})
	return map[string]error{
		"reserve": reserveErr,
		"settle":  s.Settle(ctx, r, 1),
		"extend":  s.Extend(ctx, r, time.Minute),
		"status":  statusErr,
		"adjust":  s.Adjust(ctx, b, 1),
		"ping":    s.Ping(ctx),
	}
}

func TestRedisStoppedIsUnavailableWithinTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	clock := storetest.NewClock(storetest.T0)
	b := storetest.Bud(budget.ScopeService, "s", budget.Daily, 100, true)
	for _, mode := range []string{"killed", "paused"} {
		t.Run(mode, func(t *testing.T) {
			s, srv := newPrivateStore(t, storeopts.Options{Clock: clock.Now, Timeout: timeout})
			r := storetest.MustReserve(t, s, storetest.Hold("before", 5, time.Minute, b))
			if mode == "killed" {
				srv.Stop()
			} else {
				srv.Signal(syscall.SIGSTOP)
				defer srv.Signal(syscall.SIGCONT)
			}
			for op, err := range everyOp(s, r, b) {
				if !errors.Is(err, budget.ErrUnavailable) {
					t.Errorf("%s with Redis %s: err = %v, want ErrUnavailable", op, mode, err)
				}
			}
			// The bound itself, measured once per call; generous because
			// the machine is shared, but far below go-redis's 3s default.
			start := time.Now()
			_, err := s.Reserve(context.Background(), storetest.Hold("timed", 1, time.Minute, b))
			if took := time.Since(start); !errors.Is(err, budget.ErrUnavailable) || took > 4*timeout {
				t.Errorf("Reserve took %v (timeout %v), err %v", took, timeout, err)
			}
		})
	}
}

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
	s2, err := NewRedis(redistest.Client(t, srv.Addr()), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Ping(context.Background()); !errors.Is(err, budget.ErrStoreReset) {
		t.Errorf("restarted gateway Ping = %v, want ErrStoreReset", err)
	}
	if err := s.Reinit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, st := range []*RedisStore{s, s2} {
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
	fresh, err := NewRedis(redistest.Client(t, srv.Addr()), storeopts.Options{Clock: clock.Now, Timeout: storetest.Timeout})
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
	s, err := NewRedis(redistest.Client(t, srv.Addr()), storeopts.Options{ExpectEpoch: "7.feedface", Timeout: storetest.Timeout})
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

func TestRedisUnreachableAtStartFailsClosedThenWorks(t *testing.T) {
	port := testproc.Port(t)
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	s, err := NewRedis(c, storeopts.Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("NewRedis with Redis down: %v", err)
	}
	defer s.Close()
	b := storetest.Bud(budget.ScopeService, "s", budget.Daily, 10, true)
	if _, err := s.Reserve(context.Background(), storetest.Hold("r", 1, time.Minute, b)); !errors.Is(err, budget.ErrUnavailable) {
		t.Errorf("Reserve with Redis down = %v, want ErrUnavailable", err)
	}
	redistest.StartOn(t, port)
	// A request that failed is refused for good; the next one gets a new ID.
	storetest.MustReserve(t, s, storetest.Hold("r2", 1, time.Minute, b))
}

// TestRedisReleaseOfLostReserve covers what release leaves behind, in each
// order it can race with the lost reserve and with a later settlement.
func TestRedisReleaseOfLostReserve(t *testing.T) {
	h := redisHarness(t)
	s := h.Store.(*RedisStore)
	ctx := context.Background()
	b := storetest.Bud(budget.ScopeService, "rel", budget.Daily, 10, true)
	release := func(id string) {
		s.bg.Add(1)
		s.release(id, []string{b.Key(storetest.T0)})
	}

	// The reserve ran but its reply was lost: the hold is freed at once.
	storetest.MustReserve(t, s, storetest.Hold("placed", 6, time.Minute, b))
	release("placed")
	storetest.WantLevel(t, s, b, 0, 0)

	// The release ran first: the late reserve places nothing.
	release("late")
	if _, err := s.Reserve(ctx, storetest.Hold("late", 6, time.Minute, b)); !errors.Is(err, budget.ErrDuplicate) {
		t.Errorf("late reserve after release = %v, want ErrDuplicate", err)
	}
	storetest.WantLevel(t, s, b, 0, 0)

	// on_store_failure=allow forwarded both anyway and journaled their
	// usage: each is charged once, in full.
	for _, id := range []string{"placed", "late"} {
		r := budget.Reservation{RequestID: id, Keys: []string{b.Key(storetest.T0)}}
		storetest.MustSettle(t, s, r, 2)
		storetest.MustSettle(t, s, r, 2)
	}
	storetest.WantLevel(t, s, b, 4, 0)
	release("placed") // a release after settlement changes nothing
	storetest.WantLevel(t, s, b, 4, 0)

	// A hold already charged as an orphan is refunded by its release.
	storetest.MustReserve(t, s, storetest.Hold("orphan", 3, time.Minute, b))
	h.Clock.Add(2 * time.Minute)
	storetest.WantLevel(t, s, b, 7, 0)
	release("orphan")
	storetest.WantLevel(t, s, b, 4, 0)
}

func TestNewRedisRequiresContextTimeouts(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := NewRedis(c, storeopts.Options{}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("NewRedis without ContextTimeoutEnabled = %v, want ErrInvalid", err)
	}
	if _, err := NewRedis(redistest.Client(t, "127.0.0.1:1"), storeopts.Options{Prefix: "a{b}"}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("NewRedis with braces in the prefix = %v, want ErrInvalid", err)
	}
}

func TestClusterKeysShareOneSlot(t *testing.T) {
	c := redistest.SharedCluster(t)
	cc := redistest.ClusterClient(t, c)
	ctx := context.Background()
	ks := newKeyspace("clade")
	b := storetest.Bud(budget.ScopeService, "search", budget.Daily, 1, true)
	keys := append(ks.scriptKeys("req-1", []string{b.Key(storetest.T0)}),
		ks.adjustOp("x"), ks.note("n"), ks.lock("l"), ks.records("batch"))
	want, err := cc.ClusterKeySlot(ctx, keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys[1:] {
		if got, err := cc.ClusterKeySlot(ctx, k).Result(); err != nil || got != want {
			t.Errorf("slot of %q = %d (%v), want %d", k, got, err, want)
		}
	}
	// Different prefixes spread over the masters (what the suite relies on
	// to exercise redirection).
	masters := map[string]bool{}
	for i := 0; i < 32; i++ {
		k := newKeyspace("p" + strconv.Itoa(i)).epoch()
		slot, _ := cc.ClusterKeySlot(ctx, k).Result()
		masters[masterOf(t, cc, slot)] = true
	}
	if len(masters) != 3 {
		t.Errorf("32 prefixes landed on %d masters, want 3", len(masters))
	}
}

// masterOf names the master serving slot, by its node ID.
func masterOf(t *testing.T, cc *redis.ClusterClient, slot int64) string {
	shards, err := cc.ClusterShards(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if r.Start <= slot && slot <= r.End {
				for _, n := range sh.Nodes {
					if n.Role == "master" {
						return n.ID
					}
				}
			}
		}
	}
	return ""
}

func TestNewRedisWarnsAboutEviction(t *testing.T) {
	for _, policy := range []string{"noeviction", "volatile-lru"} {
		t.Run(policy, func(t *testing.T) {
			srv := redistest.Start(t, "--maxmemory-policy", policy)
			core, logs := observer.New(zap.ErrorLevel)
			s, err := NewRedis(redistest.Client(t, srv.Addr()), storeopts.Options{Logger: zap.New(core), Timeout: storetest.Timeout})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			warned := logs.FilterMessageSnippet("maxmemory-policy noeviction").Len() == 1
			if warned != (policy != "noeviction") {
				t.Errorf("policy %s: warned = %v", policy, warned)
			}
		})
	}
}

// The reserve script sets a window's TTL only when it creates a key, so
// every way a key comes into being must leave it expiring: the window hash
// on its first hold, the hold zset again after a settle emptied it (Redis
// deletes an empty zset, TTL and all). A total budget's keys never expire.
func TestRedisWindowKeysExpire(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.T0)
	s, srv := newPrivateStore(t, storeopts.Options{Clock: clock.Now})
	c := redistest.Client(t, srv.Addr())
	daily := storetest.Bud(budget.ScopeService, "d", budget.Daily, 100, true)
	total := storetest.Bud(budget.ScopeTeam, "t", budget.Total, 100, true)

	ttls := func() map[string]time.Duration {
		t.Helper()
		keys, err := c.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]time.Duration{}
		for _, k := range keys {
			if !strings.Contains(k, ":b:") && !strings.Contains(k, ":z:") {
				continue
			}
			d, err := c.TTL(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			out[k] = d
		}
		return out
	}
	check := func(when string, wantKeys int) {
		t.Helper()
		got := ttls()
		if len(got) != wantKeys {
			t.Errorf("%s: %d window keys %v, want %d", when, len(got), got, wantKeys)
		}
		for k, d := range got {
			isTotal := strings.HasSuffix(k, ":all")
			switch {
			case isTotal && d != -1:
				t.Errorf("%s: total-budget key %s has TTL %v, want none", when, k, d)
			case !isTotal && (d <= 0 || d > 40*24*time.Hour):
				t.Errorf("%s: daily key %s has TTL %v, want a positive one (the window plus its retention)", when, k, d)
			}
		}
	}

	r1 := storetest.MustReserve(t, s, storetest.Hold("first", 5, time.Minute, daily, total))
	check("after the first hold", 4)
	storetest.MustSettle(t, s, r1, 3)
	check("after the settle emptied the zsets", 2)
	storetest.MustReserve(t, s, storetest.Hold("second", 5, time.Minute, daily, total))
	check("after a hold recreated the zsets", 4)
	storetest.WantLevel(t, s, daily, 3, 5)
	storetest.WantLevel(t, s, total, 3, 5)
}

// A hold's zset member carries its amount after the request ID, and a
// request ID may contain the separator (a batch result's custom_id is the
// client's): settle, extend and the orphan prune must still find it.
func TestRedisRequestIDWithSeparator(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.T0)
	s, _ := newPrivateStore(t, storeopts.Options{Clock: clock.Now})
	b := storetest.Bud(budget.ScopeService, "s", budget.Daily, 1000, true)

	live := storetest.MustReserve(t, s, storetest.Hold("batch:msgbatch_1:a|7|1", 10, time.Minute, b))
	if err := s.Extend(ctx, live, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	orphan := storetest.MustReserve(t, s, storetest.Hold("batch:msgbatch_1:b|0|", 20, time.Minute, b))
	storetest.WantLevel(t, s, b, 0, 30)
	// Past the orphan's lease but within the extended one: the next
	// reserve prunes the orphan at its estimate and keeps the live hold.
	clock.Add(2 * time.Minute)
	storetest.MustReserve(t, s, storetest.Hold("after", 1, time.Minute, b))
	storetest.WantLevel(t, s, b, 20, 11)
	storetest.MustSettle(t, s, live, 4)
	storetest.MustSettle(t, s, orphan, 15) // corrects the orphan charge 20 -> 15
	storetest.WantLevel(t, s, b, 19, 1)
}
