package checklist_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/redisstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/checklist"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
	"github.com/clade-gateway/clade-gateway/internal/trail"
)

var update = flag.Bool("update", false, "rewrite the expected reports in testdata")

var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func load(t *testing.T, dir string) *policy.Policy {
	t.Helper()
	p, err := policy.Load(dir, policy.LoadOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// history is live state to put in a store the way the gateway does.
type history struct {
	since       time.Time
	uses        map[string]time.Time // token -> when used
	adjustments []trail.Adjustment
}

var (
	failHistory = history{
		since: time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC),
		uses:  map[string]time.Time{"tok-search-api": time.Date(2026, 10, 28, 9, 30, 0, 0, time.UTC)},
		adjustments: []trail.Adjustment{
			{At: time.Date(2026, 12, 2, 15, 4, 5, 0, time.UTC), Scope: "team", Name: "search", ID: "monthly", AmountUSD: "-250", Reason: "refund for a runaway loop", Actor: "bob", Remote: "10.0.0.7:51234"},
		},
	}
	passHistory = history{
		since: time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC),
		uses: map[string]time.Time{
			"tok-search-api":     time.Date(2026, 12, 6, 23, 10, 0, 0, time.UTC),
			"tok-sandbox":        time.Date(2026, 11, 20, 7, 0, 0, 0, time.UTC),
			"tok-not-in-policy1": time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC),
		},
		adjustments: []trail.Adjustment{
			{At: time.Date(2026, 10, 28, 0, 0, 0, 0, time.UTC), Scope: "team", Name: "search", ID: "monthly", AmountUSD: "10", Reason: "older than the review", Actor: "alice"},
		},
	}
)

// record writes h with the gateway's own writers and an injected clock.
func record(t *testing.T, rec trail.Records, h history) {
	t.Helper()
	cur := h.since
	lu := trail.NewLastUsed(rec, func() time.Time { return cur }, nil)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	lu.Run(done) // records the start of recording, writes nothing else
	for tok, at := range h.uses {
		cur = at
		lu.Used(sha256.Sum256([]byte(tok)))
		lu.Run(done) // writes what Used queued, then returns
	}
	for _, a := range h.adjustments {
		log := trail.AdjustmentLog{Records: rec, Now: func() time.Time { return now }}
		if err := log.RecordAdjustment(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
}

// live returns, for each real store, a Live reading h back the way the
// checklist command does.
func live(t *testing.T, h history) map[string]checklist.Live {
	r := testutil.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	rs, err := redisstore.New(rdb, storeopts.Options{Timeout: 2 * time.Second, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	record(t, rs, h)
	if err := rs.Close(); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "budgets.db")
	bs, err := boltstore.Open(path, storeopts.Options{Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	record(t, bs, h)
	if err := bs.Close(); err != nil {
		t.Fatal(err)
	}
	br, err := boltstore.OpenRecordReader(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = br.Close() })
	return map[string]checklist.Live{
		"redis":    trail.Reader{Records: redisstore.NewRecordReader(rdb, "", time.Second)},
		"embedded": trail.Reader{Records: br},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s (-want +got):\n%s", name, d)
	}
}

func statuses(r *checklist.Report) map[string]checklist.Status {
	m := map[string]checklist.Status{}
	for _, it := range r.Items {
		m[it.ID] = it.Status
	}
	return m
}

func TestFailAll(t *testing.T) {
	p := load(t, "testdata/fail-all")
	for store, lv := range live(t, failHistory) {
		t.Run(store, func(t *testing.T) {
			r := checklist.Evaluate(context.Background(), p, checklist.Options{
				Now: func() time.Time { return now }, Live: lv, AdminListen: "203.0.113.10:9090",
			})
			var b bytes.Buffer
			if err := r.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, "fail-all.txt", b.Bytes())
			if !r.Failed() {
				t.Error("Failed() = false")
			}
			// Every item at its worst: FAIL, or WARN for the items that
			// only ever warn (they ask for a look, not a fix).
			warnOnly := map[string]bool{
				checklist.ItemKeyNames: true, checklist.ItemUnusedTokens: true, checklist.ItemServiceOwners: true,
				checklist.ItemBudgetAdjustments: true, checklist.ItemStoreFailureAllow: true, checklist.ItemUnknownModelMax: true,
			}
			got := statuses(r)
			for _, id := range checklist.Items() {
				want := checklist.Fail
				if warnOnly[id] {
					want = checklist.Warn
				}
				if got[id] != want {
					t.Errorf("%s = %s, want %s", id, got[id], want)
				}
			}
		})
	}
}

func TestPassAll(t *testing.T) {
	p := load(t, "testdata/pass-all")
	for store, lv := range live(t, passHistory) {
		t.Run(store, func(t *testing.T) {
			r := checklist.Evaluate(context.Background(), p, checklist.Options{
				Now: func() time.Time { return now }, Live: lv, AdminListen: "127.0.0.1:9090",
			})
			var b bytes.Buffer
			if err := r.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, "pass-all.txt", b.Bytes())
			if r.Failed() || r.Summary.Pass != len(checklist.Items()) {
				t.Errorf("summary %+v, want every item to pass", r.Summary)
			}
		})
	}
}
