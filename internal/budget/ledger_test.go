package budget

import (
	"reflect"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

func TestMergeLedgerSumsLinesOfAnHourAndNames(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 12, 8, h, m, 0, 0, time.FixedZone("CET", 3600)) }
	line := func(when time.Time, comp string, tokens int64) LedgerLine {
		return LedgerLine{Hour: when, Workspace: "prod", Key: "k1", Model: "claude-sonnet-4-6", Component: comp, Tokens: tokens, Nanos: money.Nanos(3 * tokens)}
	}
	acc := map[LineKey]LedgerLine{}
	MergeLedger(acc, []LedgerLine{line(at(10, 5), "input", 100), line(at(10, 5), "output", 7)})
	MergeLedger(acc, []LedgerLine{line(at(10, 55), "input", 20), line(at(11, 0), "input", 1)})
	hour := func(h int) time.Time { return time.Date(2026, 12, 8, h-1, 0, 0, 0, time.UTC) } // CET is UTC+1
	want := []LedgerLine{
		{Hour: hour(10), Workspace: "prod", Key: "k1", Model: "claude-sonnet-4-6", Component: "input", Tokens: 120, Nanos: 360},
		{Hour: hour(10), Workspace: "prod", Key: "k1", Model: "claude-sonnet-4-6", Component: "output", Tokens: 7, Nanos: 21},
		{Hour: hour(11), Workspace: "prod", Key: "k1", Model: "claude-sonnet-4-6", Component: "input", Tokens: 1, Nanos: 3},
	}
	if got := SortedLedger(acc); !reflect.DeepEqual(got, want) {
		t.Errorf("merged ledger:\n got %+v\nwant %+v", got, want)
	}
}
