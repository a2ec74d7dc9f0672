package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
)

// BenchBudgets is a request's usual three budgets, far from their limits.
func BenchBudgets() []budget.Budget {
	return []budget.Budget{
		Bud(budget.ScopeService, "bench", budget.Daily, money.USD(1_000_000), true),
		Bud(budget.ScopeTeam, "bench", budget.Monthly, money.USD(1_000_000), true),
		Bud(budget.ScopeWorkspace, "bench", budget.Total, money.USD(1_000_000), false),
	}
}

// BenchLedger is a typical response's ledger lines (four components)
// adding up to the 900 settled.
func BenchLedger() []budget.LedgerLine {
	h := time.Now().UTC().Truncate(time.Hour)
	l := func(comp string, tok int64, n money.Nanos) budget.LedgerLine {
		return budget.LedgerLine{Hour: h, Workspace: "bench", Key: "main", Model: "claude-sonnet-4-6", Component: comp, Tokens: tok, Nanos: n}
	}
	return []budget.LedgerLine{l("input", 120, 360), l("output", 30, 450), l("cache_read", 300, 90), l("cache_write_5m", 0, 0)}
}

// BenchReserveSettle measures s reserving and settling a request on
// BenchBudgets with BenchLedger's lines, eight goroutines per CPU at once.
func BenchReserveSettle(b *testing.B, s budget.Store) {
	ctx := context.Background()
	bs := BenchBudgets()
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8) // a gateway serves many requests at once
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("b%d", seq.Add(1))
			r, err := s.Reserve(ctx, budget.Hold{RequestID: id, Budgets: bs, Amount: 1000, TTL: time.Minute})
			if err != nil {
				b.Error(err)
				return
			}
			r.Ledger = BenchLedger()
			if err := s.Settle(ctx, r, 900); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
