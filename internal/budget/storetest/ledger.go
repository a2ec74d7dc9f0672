package storetest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"

	"github.com/google/go-cmp/cmp"
)

// LedgerLines splits actual into an input and an output line at hour.
func LedgerLines(hour time.Time, ws, model string, actual money.Nanos) []budget.LedgerLine {
	in := actual / 3
	return []budget.LedgerLine{
		{Hour: hour, Workspace: ws, Key: "k1", Model: model, Component: "input", Tokens: 100, Nanos: in},
		{Hour: hour, Workspace: ws, Key: "k1", Model: model, Component: "output", Tokens: 10, Nanos: actual - in},
	}
}

// LedgerSum adds up the tokens and the cost of ls.
func LedgerSum(t *testing.T, ls []budget.LedgerLine) (tokens int64, nanos money.Nanos) {
	t.Helper()
	for _, l := range ls {
		tokens += l.Tokens
		nanos += l.Nanos
	}
	return tokens, nanos
}

// ledgerStore is a store whose spend ledger can be read.
type ledgerStore interface {
	budget.Store
	Ledger(ctx context.Context, from, to time.Time) ([]budget.LedgerLine, error)
}

// RunLedger checks the spend ledger a store writes with its settlements:
// charged once with the budgets (a repeated or replayed settlement adds
// nothing), refused unless it adds up to the actual cost, and exact under
// concurrent settlements from two replicas.
func RunLedger(t *testing.T, newH NewHarness) {
	ctx := context.Background()
	svc := Bud(budget.ScopeService, "search", budget.Daily, 1_000_000, true)
	h0 := T0.Truncate(time.Hour)

	t.Run("ChargedOnceWithTheBudgets", func(t *testing.T) {
		h := newH(t)
		s := h.Store.(ledgerStore)
		r := MustReserve(t, s, Hold("a", 500, time.Minute, svc))
		r.Ledger = LedgerLines(h0, "prod", "claude-sonnet-4-6", 300)
		MustSettle(t, s, r, 300)
		MustSettle(t, s, r, 300) // a repeated settlement changes nothing
		// A second replica settles the same request (a journaled replay).
		MustSettle(t, h.Replica(t), r, 300)
		// No budgets at all: the ledger still gets the spend.
		MustSettle(t, s, budget.Reservation{RequestID: "free", Ledger: LedgerLines(h0.Add(time.Hour), "prod", "claude-haiku-4-5", 30)}, 30)
		MustSettle(t, s, budget.Reservation{RequestID: "free", Ledger: LedgerLines(h0.Add(time.Hour), "prod", "claude-haiku-4-5", 30)}, 30)
		WantLevel(t, s, svc, 300, 0)
		got, err := s.Ledger(ctx, h0.Add(-time.Hour), h0.Add(3*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		want := append(LedgerLines(h0, "prod", "claude-sonnet-4-6", 300), LedgerLines(h0.Add(time.Hour), "prod", "claude-haiku-4-5", 30)...)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("ledger (-want +got):\n%s", d)
		}
	})

	t.Run("MustAddUpToTheActualCost", func(t *testing.T) {
		h := newH(t)
		r := MustReserve(t, h.Store, Hold("b", 500, time.Minute, svc))
		r.Ledger = LedgerLines(h0, "prod", "m", 300)
		if err := h.Store.Settle(ctx, r, 301); !errors.Is(err, budget.ErrInvalid) {
			t.Fatalf("settle with a ledger of 300 and a cost of 301: %v, want ErrInvalid", err)
		}
		WantLevel(t, h.Store, svc, 0, 500)
	})

	t.Run("ConcurrentSettlementsSumExactly", func(t *testing.T) {
		h := newH(t)
		s := h.Store.(ledgerStore)
		const n = 64
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st := s
				if i%2 == 1 {
					st = h.Replica(t).(ledgerStore)
				}
				r := MustReserve(t, st, Hold("c"+strconv.Itoa(i), 500, time.Minute, svc))
				r.Ledger = LedgerLines(h0.Add(time.Duration(i%3)*time.Hour), "prod", "claude-opus-4-7", 70+money.Nanos(i))
				MustSettle(t, st, r, 70+money.Nanos(i))
				MustSettle(t, st, r, 70+money.Nanos(i))
			}()
		}
		wg.Wait()
		got, err := s.Ledger(ctx, h0, h0.Add(3*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		tok, nan := LedgerSum(t, got)
		st, _ := s.Status(ctx, []budget.Budget{svc})
		if nan != st[0].Spent || tok != n*110 || len(got) != 6 {
			t.Errorf("ledger sums to %d tokens, %s in %d lines; budget spent %s, want equal, %d tokens, 6 lines", tok, nan, len(got), st[0].Spent, n*110)
		}
	})
}
