package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"
	"github.com/redis/go-redis/v9"
)

// roundTrips counts commands and pipelines sent to Redis.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestOneRoundTripPerReserveAndSettle pins the hot path's cost: once the
// scripts are cached, a request is exactly one reserve and one settle call.
func TestOneRoundTripPerReserveAndSettle(t *testing.T) {
	c := redistest.Client(t, redistest.SharedAddr(t))
	rt := &roundTrips{}
	c.AddHook(rt)
	prefix := redistest.Prefix(t)
	redistest.DropPrefix(t, c, prefix)
	s, err := New(c, storeopts.Options{Prefix: prefix, Timeout: storetest.Timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	bs := storetest.BenchBudgets()
	do := func(id string) {
		r, err := s.Reserve(ctx, budget.Hold{RequestID: id, Budgets: bs, Amount: 1000, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		r.Ledger = storetest.BenchLedger() // the ledger rides in the same call
		if err := s.Settle(ctx, r, 900); err != nil {
			t.Fatal(err)
		}
	}
	do("warm") // loads the scripts (EVALSHA, then EVAL on NOSCRIPT)
	before := rt.n.Load()
	const n = 50
	for i := 0; i < n; i++ {
		do(fmt.Sprintf("r%d", i))
	}
	if got := rt.n.Load() - before; got != 2*n {
		t.Errorf("%d requests took %d round trips, want %d", n, got, 2*n)
	}
}

func BenchmarkRedisReserveSettle(b *testing.B) {
	c := redistest.Client(b, redistest.SharedAddr(b))
	rt := &roundTrips{}
	c.AddHook(rt)
	prefix := redistest.Prefix(b)
	redistest.DropPrefix(b, c, prefix)
	s, err := New(c, storeopts.Options{Prefix: prefix, Timeout: storetest.Timeout})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	cmds0, cpu0 := redisWork(b, c)
	storetest.BenchReserveSettle(b, s)
	b.StopTimer()
	cmds1, cpu1 := redisWork(b, c)
	b.ReportMetric(float64(rt.n.Load())/float64(b.N), "roundtrips/op")
	// Commands run inside the scripts count too: they are Redis's cost of
	// a request, which round trips do not show. INFO itself adds one call
	// (of four INFO sections) per measurement, nothing per op.
	b.ReportMetric(float64(cmds1-cmds0)/float64(b.N), "redis-cmds/op")
	b.ReportMetric((cpu1-cpu0)*1e6/float64(b.N), "redis-cpu-µs/op")
}

// redisWork reads the server's total command calls (INFO commandstats)
// and CPU seconds (INFO cpu, user + system, main thread and children).
func redisWork(b *testing.B, c *redis.Client) (calls int64, cpu float64) {
	b.Helper()
	info, err := c.Info(context.Background(), "commandstats", "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(k, "cmdstat_"):
			for _, f := range strings.Split(v, ",") {
				if n, ok := strings.CutPrefix(f, "calls="); ok {
					x, _ := strconv.ParseInt(n, 10, 64)
					calls += x
				}
			}
		case k == "used_cpu_user" || k == "used_cpu_sys":
			x, _ := strconv.ParseFloat(v, 64)
			cpu += x
		}
	}
	return calls, cpu
}
