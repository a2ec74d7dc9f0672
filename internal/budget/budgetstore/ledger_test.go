package budgetstore

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/google/go-cmp/cmp"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

type ledgerStore interface {
	budget.Store
	Ledger(ctx context.Context, from, to time.Time) ([]budget.LedgerLine, error)
}

func TestLedgerRedis(t *testing.T)   { runLedger(t, redisHarness) }
func TestLedgerCluster(t *testing.T) { runLedger(t, clusterHarness) }
func TestLedgerBolt(t *testing.T)    { runLedger(t, boltHarness) }

func runLedger(t *testing.T, newH storetest.NewHarness) {
	ctx := context.Background()
	svc := storetest.Bud(budget.ScopeService, "search", budget.Daily, 1_000_000, true)
	h0 := storetest.T0.Truncate(time.Hour)

	t.Run("ChargedOnceWithTheBudgets", func(t *testing.T) {
		h := newH(t)
		s := h.Store.(ledgerStore)
		r := storetest.MustReserve(t, s, storetest.Hold("a", 500, time.Minute, svc))
		r.Ledger = storetest.LedgerLines(h0, "prod", "claude-sonnet-4-6", 300)
		storetest.MustSettle(t, s, r, 300)
		storetest.MustSettle(t, s, r, 300) // a repeated settlement changes nothing
		// A second replica settles the same request (a journaled replay).
		storetest.MustSettle(t, h.Replica(t), r, 300)
		// No budgets at all: the ledger still gets the spend.
		storetest.MustSettle(t, s, budget.Reservation{RequestID: "free", Ledger: storetest.LedgerLines(h0.Add(time.Hour), "prod", "claude-haiku-4-5", 30)}, 30)
		storetest.MustSettle(t, s, budget.Reservation{RequestID: "free", Ledger: storetest.LedgerLines(h0.Add(time.Hour), "prod", "claude-haiku-4-5", 30)}, 30)
		storetest.WantLevel(t, s, svc, 300, 0)
		got, err := s.Ledger(ctx, h0.Add(-time.Hour), h0.Add(3*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		want := append(storetest.LedgerLines(h0, "prod", "claude-sonnet-4-6", 300), storetest.LedgerLines(h0.Add(time.Hour), "prod", "claude-haiku-4-5", 30)...)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("ledger (-want +got):\n%s", d)
		}
	})

	t.Run("MustAddUpToTheActualCost", func(t *testing.T) {
		h := newH(t)
		r := storetest.MustReserve(t, h.Store, storetest.Hold("b", 500, time.Minute, svc))
		r.Ledger = storetest.LedgerLines(h0, "prod", "m", 300)
		if err := h.Store.Settle(ctx, r, 301); !errors.Is(err, budget.ErrInvalid) {
			t.Fatalf("settle with a ledger of 300 and a cost of 301: %v, want ErrInvalid", err)
		}
		storetest.WantLevel(t, h.Store, svc, 0, 500)
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
				r := storetest.MustReserve(t, st, storetest.Hold("c"+strconv.Itoa(i), 500, time.Minute, svc))
				r.Ledger = storetest.LedgerLines(h0.Add(time.Duration(i%3)*time.Hour), "prod", "claude-opus-4-7", 70+money.Nanos(i))
				storetest.MustSettle(t, st, r, 70+money.Nanos(i))
				storetest.MustSettle(t, st, r, 70+money.Nanos(i))
			}()
		}
		wg.Wait()
		got, err := s.Ledger(ctx, h0, h0.Add(3*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		tok, nan := storetest.LedgerSum(t, got)
		st, _ := s.Status(ctx, []budget.Budget{svc})
		if nan != st[0].Spent || tok != n*110 || len(got) != 6 {
			t.Errorf("ledger sums to %d tokens, %s in %d lines; budget spent %s, want equal, %d tokens, 6 lines", tok, nan, len(got), st[0].Spent, n*110)
		}
	})
}

func TestLedgerRetentionRedis(t *testing.T) {
	h := redisHarness(t)
	s := h.Store.(*RedisStore)
	hour := storetest.T0.Truncate(time.Hour)
	storetest.MustSettle(t, s, budget.Reservation{RequestID: "r", Ledger: storetest.LedgerLines(hour, "w", "m", 9)}, 9)
	ttl, err := s.rdb.TTL(context.Background(), s.keys.ledger(hour.Format(budget.LedgerHourFormat))).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := hour.Add(budget.DefaultLedgerRetention).Sub(storetest.T0)
	if ttl <= want-time.Minute || ttl > want {
		t.Errorf("ledger hour TTL %s, want about %s (400 days from its hour)", ttl, want)
	}
}

func TestLedgerRetentionBolt(t *testing.T) {
	h := boltHarness(t)
	s := h.Store.(*BoltStore)
	hour := storetest.T0.Truncate(time.Hour)
	storetest.MustSettle(t, s, budget.Reservation{RequestID: "old", Ledger: storetest.LedgerLines(hour, "w", "m", 9)}, 9)
	h.Clock.Add(budget.DefaultLedgerRetention + time.Hour)
	// The embedded store collects garbage while it reserves.
	svc := storetest.Bud(budget.ScopeService, "gc", budget.Daily, 1_000_000, true)
	storetest.MustSettle(t, s, storetest.MustReserve(t, s, storetest.Hold("new", 5, time.Minute, svc)), 5)
	got, err := s.Ledger(context.Background(), hour, hour.Add(time.Hour))
	if err != nil || len(got) != 0 {
		t.Errorf("ledger of an hour past retention: %v, %v; want it gone", got, err)
	}
}
