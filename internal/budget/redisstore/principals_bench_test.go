package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/redis/go-redis/v9"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// BenchmarkPrincipalMemory measures what principals cost Redis: each
// iteration is one new principal's first request (a daily and a monthly
// budget, as a developer's caps) reserved and settled, beside the
// service's own budget. It reports used_memory per principal with the
// request's settled hold record (kept budget.SettledTTL for late settlements) and
// without it (the windows alone, what stays while the windows live):
//
//	go test -run '^$' -bench PrincipalMemory -benchtime 100000x ./internal/budget/redisstore/
func BenchmarkPrincipalMemory(b *testing.B) {
	srv := redistest.Start(b)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 16, ContextTimeoutEnabled: true})
	defer c.Close()
	ctx := context.Background()
	s, err := New(c, storeopts.Options{Prefix: "clade", Timeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	service := storetest.Bud(budget.ScopeService, "claude-code", budget.Monthly, money.USD(1_000_000), true)
	// Prime the service's window and Redis's own structures.
	r, err := s.Reserve(ctx, budget.Hold{RequestID: "prime", Budgets: []budget.Budget{service}, Amount: money.USD(1), TTL: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Settle(ctx, r, money.USD(1)/2); err != nil {
		b.Fatal(err)
	}
	before := usedMemory(b, c)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("claude-code/claude_code.user/developer-%08d@example.com", i)
		bs := []budget.Budget{service,
			{Scope: budget.ScopePrincipal, Name: name, ID: "daily", Period: budget.Daily, Limit: money.USD(20), Enforce: true},
			{Scope: budget.ScopePrincipal, Name: name, ID: "monthly", Period: budget.Monthly, Limit: money.USD(300), Enforce: true}}
		r, err := s.Reserve(ctx, budget.Hold{RequestID: "req_clade_" + strconv.Itoa(i) + "0123456789abcdef01", Budgets: bs, Amount: money.USD(1), TTL: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Settle(ctx, r, money.USD(1)/3); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	withHolds := usedMemory(b, c) - before
	// Drop the settled hold records: what remains is the windows.
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, "{clade}:hold:*", 1000).Result()
		if err != nil {
			b.Fatal(err)
		}
		if len(keys) > 0 {
			c.Unlink(ctx, keys...)
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	windows := usedMemory(b, c) - before
	n := float64(b.N)
	b.ReportMetric(float64(withHolds)/n, "B/principal+hold")
	b.ReportMetric(float64(windows)/n, "B/principal")
	b.ReportMetric(float64(windows)/n*1e6/(1<<20), "MiB/1M-principals")
	keys, _ := c.DBSize(ctx).Result()
	b.ReportMetric(float64(keys), "keys")
}

func usedMemory(b *testing.B, c *redis.Client) int64 {
	b.Helper()
	info, err := c.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no used_memory in INFO memory")
	return 0
}
