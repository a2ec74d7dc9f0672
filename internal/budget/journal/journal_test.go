package journal

import (
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.etcd.io/bbolt"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// downStore is a store that cannot be reached.
type downStore struct{ budget.Store }

func (downStore) Settle(context.Context, budget.Reservation, money.Nanos) error {
	return budget.ErrUnavailable
}

func TestJournalReplaysOnceAcrossRestart(t *testing.T) {
	for _, rs := range stores {
		t.Run(rs.name, func(t *testing.T) {
			ctx := context.Background()
			clock := storetest.NewClock(storetest.T0)
			s := rs.open(t, clock)
			svc := storetest.Bud(budget.ScopeService, "j", budget.Daily, 100, true)
			team := storetest.Bud(budget.ScopeTeam, "j", budget.Monthly, 100, true)
			path := filepath.Join(t.TempDir(), "journal.db")

			j, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			// A reserved request whose settlement could not reach the store,
			// one forwarded with no reservation (on_store_failure=allow), and
			// one with no budgets at all.
			held := storetest.MustReserve(t, s, storetest.Hold("held", 9, time.Hour, svc, team))
			allowed := budget.Reservation{RequestID: "allowed", Keys: []string{svc.Key(storetest.T0), team.Key(storetest.T0)}}
			for _, e := range []struct {
				r budget.Reservation
				a money.Nanos
			}{{held, 4}, {allowed, 6}, {budget.Reservation{RequestID: "free"}, 3}} {
				if err := j.Append(e.r, e.a); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := j.Replay(ctx, downStore{}); !errors.Is(err, budget.ErrUnavailable) || n != 0 || j.Len() != 3 {
				t.Fatalf("replay against a down store = %d, %v, len %d; want 0, ErrUnavailable, 3", n, err, j.Len())
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}

			j, err = Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if j.Len() != 3 {
				t.Fatalf("reopened journal has %d entries, want 3", j.Len())
			}
			n, err := j.Replay(ctx, s)
			if err != nil || n != 3 || j.Len() != 0 {
				t.Fatalf("replay = %d, %v, len %d; want 3, nil, 0", n, err, j.Len())
			}
			storetest.WantLevel(t, s, svc, 10, 0)
			storetest.WantLevel(t, s, team, 10, 0)

			// Replaying again, or an entry appended twice (a crash between
			// settling and deleting), changes nothing.
			if n, err := j.Replay(ctx, s); err != nil || n != 0 {
				t.Errorf("second replay = %d, %v", n, err)
			}
			if err := j.Append(allowed, 6); err != nil {
				t.Fatal(err)
			}
			if n, err := j.Replay(ctx, s); err != nil || n != 1 {
				t.Errorf("replay of a duplicate = %d, %v", n, err)
			}
			storetest.WantLevel(t, s, svc, 10, 0)
			storetest.WantLevel(t, s, team, 10, 0)
		})
	}
}

func TestJournalSetsAsideInvalidEntries(t *testing.T) {
	clock := storetest.NewClock(storetest.T0)
	s := openBolt(t, clock)
	j, err := Open(filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Append(budget.Reservation{}, 1); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("Append without request ID = %v, want ErrInvalid", err)
	}
	if err := j.Append(budget.Reservation{RequestID: "y", Keys: []string{"service:j:daily:20261127"}}, 2); err != nil {
		t.Fatal(err)
	}
	// An older entry the store refuses (written by a buggy or older
	// gateway): it must not block the one behind it.
	err = j.db.Update(func(tx *bbolt.Tx) error {
		j.n.Add(1)
		return tx.Bucket(bktJournal).Put(seqKey(0), []byte(`{"reservation":{"request_id":""},"actual":1}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	n, err := j.Replay(context.Background(), s)
	if err != nil || n != 1 || j.Len() != 0 {
		t.Errorf("replay = %d, %v, len %d; want 1 applied, the invalid one set aside", n, err, j.Len())
	}
	storetest.WantLevel(t, s, storetest.Bud(budget.ScopeService, "j", budget.Daily, 10, true), 2, 0)
}

func TestJournalRunReplaysInBackground(t *testing.T) {
	clock := storetest.NewClock(storetest.T0)
	s := openBolt(t, clock)
	j, err := Open(filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	reg := prometheus.NewRegistry()
	if err := j.Register(reg); err != nil {
		t.Fatal(err)
	}
	b := storetest.Bud(budget.ScopeService, "bg", budget.Daily, 10, true)
	if err := j.Append(budget.Reservation{RequestID: "a", Keys: []string{b.Key(storetest.T0)}}, 5); err != nil {
		t.Fatal(err)
	}
	const want = `
# HELP clade_gateway_journal_entries Settlements waiting in the local journal for the budget store.
# TYPE clade_gateway_journal_entries gauge
clade_gateway_journal_entries 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "clade_gateway_journal_entries"); err != nil {
		t.Error(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { j.Run(ctx, s, 10*time.Millisecond); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for j.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if j.Len() != 0 {
		t.Fatalf("Run left %d entries", j.Len())
	}
	storetest.WantLevel(t, s, b, 5, 0)
}

func seqKey(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
