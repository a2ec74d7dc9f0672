package storetest

import (
	"context"
	"errors"
	"testing"
	"time"
	_ "time/tzdata" // the rollover cases need a real zone on any machine

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/google/go-cmp/cmp"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// runRecordsConformance covers adjustments, exactness, notifications, records, locks and invalid calls.
func runRecordsConformance(t *testing.T, newH NewHarness) {
	ctx := context.Background()
	svc := Bud(budget.ScopeService, "search", budget.Daily, 10, true)
	team := Bud(budget.ScopeTeam, "core", budget.Monthly, 5, true)

	t.Run("AdjustAndStatus", func(t *testing.T) {
		h := newH(t)
		s := h.Store
		if err := s.Adjust(ctx, svc, 4); err != nil {
			t.Fatal(err)
		}
		if err := s.Adjust(ctx, svc, -1); err != nil {
			t.Fatal(err)
		}
		r := MustReserve(t, s, Hold("a", 2, time.Minute, svc))
		st, err := s.Status(ctx, []budget.Budget{svc, team})
		if err != nil {
			t.Fatal(err)
		}
		start, end := svc.Window(T0)
		if st[0].Spent != 3 || st[0].Reserved != 2 || st[0].Remaining() != 5 ||
			!st[0].WindowStart.Equal(start) || !st[0].ResetsAt.Equal(end) || st[0].Budget.Name != "search" {
			t.Errorf("status = %+v", st[0])
		}
		if st[1].Spent != 0 || st[1].Reserved != 0 || st[1].Remaining() != 5 {
			t.Errorf("untouched budget status = %+v", st[1])
		}
		// A credit larger than the spend makes it negative: -2 spent plus 2
		// held leaves exactly the limit.
		if err := s.Adjust(ctx, svc, -5); err != nil {
			t.Fatal(err)
		}
		WantLevel(t, s, svc, -2, 2)
		_ = MustExceed(t, s, Hold("b", 11, time.Minute, svc))
		MustReserve(t, s, Hold("c", 10, time.Minute, svc))
		MustSettle(t, s, r, 2)
		WantLevel(t, s, svc, 0, 10)
	})

	t.Run("ExactBeyondFloatPrecision", func(t *testing.T) {
		// 2^53 nano-USD is about 9 million USD; above it a float64 cannot
		// tell limit from limit+1.
		big := Bud(budget.ScopeWorkspace, "huge", budget.Total, 20_000_000*money.PerUSD+1, true)
		h := newH(t)
		if err := h.Store.Adjust(ctx, big, big.Limit-10); err != nil {
			t.Fatal(err)
		}
		_ = MustExceed(t, h.Store, Hold("a", 11, time.Minute, big))
		r := MustReserve(t, h.Store, Hold("b", 10, time.Minute, big))
		if r.Remaining != 0 {
			t.Errorf("remaining = %s, want 0", r.Remaining)
		}
		_ = MustExceed(t, h.Store, Hold("c", 1, time.Minute, big))
		MustSettle(t, h.Store, r, 9)
		WantLevel(t, h.Store, big, big.Limit-1, 0)
		MustReserve(t, h.Store, Hold("d", 1, time.Minute, big))
	})

	t.Run("ClaimNotificationOnce", func(t *testing.T) {
		h := newH(t)
		a, b := h.Store, h.Replica(t)
		got := []bool{}
		for _, s := range []Store{a, b, a} {
			ok, err := s.ClaimNotification(ctx, "alert:service:search:daily:20261127:0.8", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ok)
		}
		if d := cmp.Diff([]bool{true, false, false}, got); d != "" {
			t.Errorf("claims (-want +got):\n%s", d)
		}
		h.Clock.Add(time.Hour)
		if ok, err := b.ClaimNotification(ctx, "alert:service:search:daily:20261127:0.8", time.Hour); err != nil || !ok {
			t.Errorf("claim after expiry = %v, %v, want true", ok, err)
		}
	})

	t.Run("RecordsAndLocks", func(t *testing.T) {
		h := newH(t)
		a, b := h.Store, h.Replica(t)
		if err := a.PutRecord(ctx, "batch", "msgbatch_1", []byte(`{"service":"search"}`)); err != nil {
			t.Fatal(err)
		}
		if err := a.PutRecord(ctx, "batch", "msgbatch_2", []byte("two")); err != nil {
			t.Fatal(err)
		}
		v, ok, err := b.GetRecord(ctx, "batch", "msgbatch_1")
		if err != nil || !ok || string(v) != `{"service":"search"}` {
			t.Errorf("GetRecord = %q, %v, %v", v, ok, err)
		}
		if _, ok, err := b.GetRecord(ctx, "batch", "missing"); err != nil || ok {
			t.Errorf("GetRecord(missing) = %v, %v", ok, err)
		}
		if err := b.DeleteRecord(ctx, "batch", "msgbatch_2"); err != nil {
			t.Fatal(err)
		}
		if err := b.DeleteRecord(ctx, "batch", "never"); err != nil {
			t.Fatal(err)
		}
		all, err := a.ListRecords(ctx, "batch")
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(map[string][]byte{"msgbatch_1": []byte(`{"service":"search"}`)}, all); d != "" {
			t.Errorf("ListRecords (-want +got):\n%s", d)
		}
		if all, err := a.ListRecords(ctx, "none"); err != nil || len(all) != 0 {
			t.Errorf("ListRecords(none) = %v, %v", all, err)
		}

		lock := func(s Store) bool {
			ok, err := s.TryLock(ctx, "batch-poller", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		got := []bool{lock(a), lock(b), lock(a)} // the holder renews
		h.Clock.Add(59 * time.Second)
		got = append(got, lock(b))
		h.Clock.Add(61 * time.Second) // past a's renewed lease
		got = append(got, lock(b), lock(a))
		if d := cmp.Diff([]bool{true, false, true, false, true, false}, got); d != "" {
			t.Errorf("locks (-want +got):\n%s", d)
		}
	})

	t.Run("InvalidCalls", func(t *testing.T) {
		s := newH(t).Store
		cases := []struct {
			name string
			err  error
		}{
			{"no request ID", func() error { _, err := s.Reserve(ctx, Hold("", 1, time.Minute, svc)); return err }()},
			{"negative amount", func() error { _, err := s.Reserve(ctx, Hold("n", -1, time.Minute, svc)); return err }()},
			{"budget twice", func() error { _, err := s.Reserve(ctx, Hold("n", 1, time.Minute, svc, svc)); return err }()},
			{"negative actual", s.Settle(ctx, budget.Reservation{RequestID: "x", Keys: []string{"k"}}, -1)},
			{"settle without ID", s.Settle(ctx, budget.Reservation{Keys: []string{"k"}}, 1)},
		}
		for _, tc := range cases {
			if !errors.Is(tc.err, budget.ErrInvalid) {
				t.Errorf("%s: err = %v, want ErrInvalid", tc.name, tc.err)
			}
		}
		WantLevel(t, s, svc, 0, 0)
	})
}
