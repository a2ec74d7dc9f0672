package journal

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

func TestLedgerSurvivesTheJournal(t *testing.T) {
	s := openBolt(t, storetest.NewClock(storetest.T0))
	j, err := Open(filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	hour := storetest.T0.Truncate(time.Hour)
	svc := storetest.Bud(budget.ScopeService, "journaled", budget.Daily, 1_000_000, true)
	r := budget.Reservation{RequestID: "j1", Keys: []string{svc.Key(storetest.T0)}, Ledger: storetest.LedgerLines(hour, "prod", "m", 40)}
	if err := j.Append(r, 40); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a replay after a crash between settling and deleting
		if _, err := j.Replay(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if err := j.Append(r, 40); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := j.Replay(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	got, err := s.Ledger(context.Background(), hour, hour.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if tok, nan := storetest.LedgerSum(t, got); nan != 40 || tok != 110 {
		t.Errorf("ledger after journaled replays: %d tokens, %s; want 110 and 40 once", tok, nan)
	}
	storetest.WantLevel(t, s, svc, 40, 0)
}
