package trail_test

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/redisstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
	"github.com/clade-gateway/clade-gateway/internal/trail"
)

// clock is a settable clock shared by the recorder and the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// counting passes every call to a real store and counts the writes.
type counting struct {
	trail.Records
	puts atomic.Int64
}

func (c *counting) PutRecord(ctx context.Context, kind, id string, v []byte) error {
	if kind == "token_last_used" {
		c.puts.Add(1)
	}
	return c.Records.PutRecord(ctx, kind, id, v)
}

// store is one real budget store plus a reader that reads it the way the
// checklist command does.
type store struct {
	name   string
	rec    trail.Records
	reader func(t *testing.T) trail.Lister
}

func client(t *testing.T, r *testutil.Redis) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func stores(t *testing.T) []store {
	r := testutil.StartRedis(t)
	rs, err := redisstore.New(client(t, r), storeopts.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Close() })
	path := filepath.Join(t.TempDir(), "budgets.db")
	bs, err := boltstore.Open(path, storeopts.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	boltOpen := true
	var reader trail.Lister
	t.Cleanup(func() {
		if boltOpen {
			_ = bs.Close()
		}
	})
	return []store{
		{name: "redis", rec: rs, reader: func(t *testing.T) trail.Lister {
			return redisstore.NewRecordReader(client(t, r), "", 2*time.Second)
		}},
		{name: "embedded", rec: bs, reader: func(t *testing.T) trail.Lister {
			if reader != nil {
				return reader
			}
			// The file is locked while the store is open, as it is
			// while a gateway runs.
			if _, err := boltstore.OpenRecordReader(path); err == nil {
				t.Fatal("read-only reader opened a file an open store holds")
			}
			if err := bs.Close(); err != nil {
				t.Fatal(err)
			}
			boltOpen = false
			rd, err := boltstore.OpenRecordReader(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rd.Close() })
			reader = rd
			return rd
		}},
	}
}

func TestLastUsedWritesOncePerTokenPerHour(t *testing.T) {
	for _, s := range stores(t) {
		t.Run(s.name, func(t *testing.T) {
			c := &clock{t: time.Date(2026, 12, 7, 10, 5, 0, 0, time.UTC)}
			rec := &counting{Records: s.rec}
			lu := trail.NewLastUsed(rec, c.Now, nil)
			a, b := sha256.Sum256([]byte("token-a")), sha256.Sum256([]byte("token-b"))

			// A stopped Run records when recording began and returns.
			stopped, stop := context.WithCancel(context.Background())
			stop()
			lu.Run(stopped)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { lu.Run(ctx); close(done) }()

			// A burst of concurrent requests in one hour: one write per token.
			var wg sync.WaitGroup
			for i := 0; i < 50; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := 0; j < 20; j++ {
						lu.Used(a)
						lu.Used(b)
					}
				}()
			}
			wg.Wait()
			c.Set(time.Date(2026, 12, 7, 10, 59, 0, 0, time.UTC))
			lu.Used(a) // same hour: nothing
			c.Set(time.Date(2026, 12, 7, 11, 0, 30, 0, time.UTC))
			lu.Used(a) // next hour: written again
			cancel()
			<-done // Run writes what is queued before it returns

			if got := rec.puts.Load(); got != 3 {
				t.Fatalf("%d last-used writes, want 3 (a and b at 10:05, a at 11:00)", got)
			}
			used, since, err := trail.Reader{Records: s.reader(t)}.LastUsed(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if want := time.Date(2026, 12, 7, 11, 0, 30, 0, time.UTC); !used[a].Equal(want) {
				t.Errorf("a last used %v, want %v", used[a], want)
			}
			if want := time.Date(2026, 12, 7, 10, 5, 0, 0, time.UTC); !used[b].Equal(want) {
				t.Errorf("b last used %v, want %v", used[b], want)
			}
			if len(used) != 2 {
				t.Errorf("%d records, want 2", len(used))
			}
			if want := time.Date(2026, 12, 7, 10, 5, 0, 0, time.UTC); !since.Equal(want) {
				t.Errorf("recording since %v, want %v", since, want)
			}
		})
	}
}

// A failed write forgets the hour, so the token's next request retries.
func TestLastUsedRetriesAfterFailedWrite(t *testing.T) {
	r := testutil.StartRedis(t)
	rs, err := redisstore.New(client(t, r), storeopts.Options{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	c := &clock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	lu := trail.NewLastUsed(rs, c.Now, nil)
	d := sha256.Sum256([]byte("tok"))

	r.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { lu.Run(ctx); close(done) }()
	lu.Used(d)
	cancel()
	<-done

	r.Restart()
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { lu.Run(ctx); close(done) }()
	c.Set(time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC)) // same hour
	lu.Used(d)
	cancel()
	<-done

	used, since, err := trail.Reader{Records: redisstore.NewRecordReader(client(t, r), "", time.Second)}.LastUsed(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC); !used[d].Equal(want) {
		t.Errorf("last used %v, want %v (the retry in the same hour)", used[d], want)
	}
	if since.IsZero() {
		t.Error("the start of recording was never written")
	}
}

func TestAdjustmentsRecordedListedAndPruned(t *testing.T) {
	for _, s := range stores(t) {
		t.Run(s.name, func(t *testing.T) {
			now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
			log := trail.AdjustmentLog{Records: s.rec, Now: func() time.Time { return now }}
			ctx := context.Background()
			add := func(ago time.Duration, reason string) {
				t.Helper()
				err := log.RecordAdjustment(ctx, trail.Adjustment{At: now.Add(-ago), Scope: "team", Name: "search", ID: "monthly",
					AmountUSD: "-12.5", Reason: reason, Actor: "alice", Remote: "127.0.0.1:5000"})
				if err != nil {
					t.Fatal(err)
				}
			}
			add(100*24*time.Hour, "beyond retention")
			add(40*24*time.Hour, "older than the review")
			add(10*24*time.Hour, "refund")
			add(0, "credit after an outage")
			got, err := trail.Reader{Records: s.reader(t)}.Adjustments(ctx, now.Add(-30*24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0].Reason != "refund" || got[1].Reason != "credit after an outage" {
				t.Fatalf("adjustments in the last 30 days = %+v", got)
			}
			if got[0].Actor != "alice" || got[0].AmountUSD != "-12.5" || got[0].Scope != "team" || got[0].Remote != "127.0.0.1:5000" {
				t.Errorf("fields lost: %+v", got[0])
			}
			all, err := s.reader(t).ListRecords(ctx, "budget_adjustments")
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 3 {
				t.Errorf("%d adjustment records kept, want 3 (the 100-day-old one pruned)", len(all))
			}
		})
	}
}
