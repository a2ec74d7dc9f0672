package redisstore

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/redis/go-redis/v9"
)

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
