package reliability

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
)

// TestMain runs the scenarios and prints their figures as one table (the
// lead copies it into the closing note).
func TestMain(m *testing.M) {
	code := m.Run()
	if s := results.render(); s != "" {
		fmt.Print(s)
	}
	os.Exit(code)
}

// row is one scenario's figures, as printed.
type row struct {
	Scenario  string
	Load      string
	Faults    string
	Unmetered string // requests forwarded unmetered
	Drift     string // spend drift vs ground truth, nano-USD
	Double    string // double charges
	Leaks     string // canary hits
	Recovery  string
	Result    string
}

// table collects rows from tests that run one after another; the mutex
// only guards against a scenario that someone later marks parallel.
type table struct {
	mu   sync.Mutex
	rows []*row
}

// results is the run's table. It is test-binary state, written only by
// newRow's cleanups and read once by TestMain.
var results = &table{}

// newRow starts the row of the test t. Its cleanup, registered first so it
// runs after every other cleanup, sets the result and adds the row, so a
// failed scenario still shows its figures.
func newRow(t *testing.T, scenario string) *row {
	r := &row{Scenario: scenario, Unmetered: "-", Drift: "-", Double: "-", Leaks: "-", Recovery: "-"}
	t.Cleanup(func() {
		r.Result = "PASS"
		if t.Failed() {
			r.Result = "FAIL"
		}
		t.Logf("row: %s | %s | %s | %s | %s | %s | %s | %s | %s",
			r.Scenario, r.Load, r.Faults, r.Unmetered, r.Drift, r.Double, r.Leaks, r.Recovery, r.Result)
		results.mu.Lock()
		results.rows = append(results.rows, r)
		results.mu.Unlock()
	})
	return r
}

func (tb *table) render() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.rows) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nRELIABILITY RESULTS\n\n")
	b.WriteString("| scenario | load | faults injected | requests forwarded unmetered | spend drift vs ground truth (nano-USD) | double charges | leaks | recovery time | result |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	// Scenario names start with their number in the brief, so the table
	// reads in that order whatever order the files ran in.
	sort.SliceStable(tb.rows, func(i, j int) bool { return tb.rows[i].Scenario < tb.rows[j].Scenario })
	for _, r := range tb.rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Scenario, r.Load, r.Faults, r.Unmetered, r.Drift, r.Double, r.Leaks, r.Recovery, r.Result)
	}
	return b.String()
}
