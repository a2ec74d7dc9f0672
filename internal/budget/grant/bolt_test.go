package grant_test

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/grant"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

// The embedded store is opened by one process at a time, so the grants a
// killed process left in the file are charged in full (as their lease ends
// would charge them) when the next process opens it, not a lease later.
func TestBoltGrantOfAGoneProcessIsChargedAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "budgets.db")
	clock := storetest.NewClock(storetest.T0)
	opts := storeopts.Options{Clock: clock.Now, Timeout: storetest.Timeout}
	svc := storetest.Bud(budget.ScopeService, "killed", budget.Daily, 1_000_000, true)
	s, err := boltstore.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	g, err := grant.New(s, grant.Options{Window: 100 * time.Millisecond, Lease: time.Minute, Flush: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if r := storetest.MustReserve(t, g, storetest.Hold("inflight"+strconv.Itoa(i), 100, time.Minute, svc)); !r.InMemory() {
			t.Fatalf("request %d took the exact path", i)
		}
	}
	settled := storetest.MustReserve(t, g, storetest.Hold("settled", 100, time.Minute, svc))
	storetest.MustSettle(t, g, settled, 40)
	storetest.Eventually(t, "the settlement is charged", func() bool { s, _ := storetest.Levels(t, s, svc); return s == 40 })
	grant.Crash(g) // a SIGKILL: nothing returned
	spent, held := storetest.Levels(t, s, svc)
	if held < 300 {
		t.Fatalf("grant holds %s, want at least the 3 requests in flight", held)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	next, err := boltstore.Open(path, opts) // the next process, well within the lease
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	storetest.WantLevel(t, next, svc, spent+held, 0)
	// A grant the next process starts is its own, and charged exactly.
	g2, err := grant.New(next, grant.Options{Window: 100 * time.Millisecond, Lease: time.Minute, Flush: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	storetest.MustSettle(t, g2, storetest.MustReserve(t, g2, storetest.Hold("after", 100, time.Minute, svc)), 30)
	if err := g2.Close(); err != nil {
		t.Fatal(err)
	}
	// Close closed next too; read the file once more.
	last, err := boltstore.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer last.Close()
	storetest.WantLevel(t, last, svc, spent+held+30, 0)
}
