package reliability

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// budgetLevel is one budget's spent and reserved amounts.
type budgetLevel struct {
	Spent, Reserved money.Nanos
}

// serviceBudget reads the recommendation service's budget from
// GET /admin/budgets.
func serviceBudget(adminURL string) (budgetLevel, error) {
	req, _ := http.NewRequest(http.MethodGet, adminURL+"/admin/budgets", nil)
	req.Header.Set("Authorization", "Bearer "+testutil.AdminToken)
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return budgetLevel{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return budgetLevel{}, fmt.Errorf("GET /admin/budgets: %d %s", resp.StatusCode, b)
	}
	var out struct {
		Budgets []struct {
			Scope, Name string
			SpentUSD    string `json:"spent_usd"`
			ReservedUSD string `json:"reserved_usd"`
		} `json:"budgets"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return budgetLevel{}, fmt.Errorf("GET /admin/budgets: %w", err)
	}
	for _, x := range out.Budgets {
		if x.Scope == "service" && x.Name == "recommendation" {
			s, err1 := money.Parse(x.SpentUSD)
			r, err2 := money.Parse(x.ReservedUSD)
			if err1 != nil || err2 != nil {
				return budgetLevel{}, fmt.Errorf("amounts %q %q", x.SpentUSD, x.ReservedUSD)
			}
			return budgetLevel{Spent: s, Reserved: r}, nil
		}
	}
	return budgetLevel{}, fmt.Errorf("no service budget of recommendation in %s", b)
}

// waitBudget polls the service budget until ok holds, and returns the last
// level read and whether ok held within the time.
func waitBudget(t *testing.T, adminURL string, within time.Duration, ok func(budgetLevel) bool) (budgetLevel, bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last budgetLevel
	for {
		lv, err := serviceBudget(adminURL)
		if err == nil {
			last = lv
			if ok(lv) {
				return lv, true
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Logf("last budget read failed: %v", err)
			}
			return last, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// spendRecord is one line of the spend log.
type spendRecord struct {
	Msg       string `json:"msg"`
	RequestID string `json:"request_id"`
	TotalUSD  string `json:"total_usd"`
	ChargedBy string `json:"charged_by"`
}

// spendRecords parses the spend log (one JSON object per line).
func spendRecords(t *testing.T, log string) []spendRecord {
	t.Helper()
	var out []spendRecord
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r spendRecord
		if err := json.Unmarshal(line, &r); err != nil {
			t.Errorf("spend log line is not JSON: %q", line)
			continue
		}
		if r.Msg == "spend" {
			out = append(out, r)
		}
	}
	return out
}

// doubleCharges counts request IDs with more than one spend record.
func doubleCharges(recs []spendRecord) int {
	seen := map[string]int{}
	n := 0
	for _, r := range recs {
		seen[r.RequestID]++
		if seen[r.RequestID] == 2 {
			n++
		}
	}
	return n
}

// sumSpend adds up the spend records' totals.
func sumSpend(t *testing.T, recs []spendRecord) money.Nanos {
	t.Helper()
	var sum money.Nanos
	for _, r := range recs {
		v, err := money.Parse(r.TotalUSD)
		if err != nil {
			t.Errorf("spend record total %q: %v", r.TotalUSD, err)
		}
		sum += v
	}
	return sum
}

// truthCost is the exact cost of every complete response the fake sent.
func truthCost(f *fakeupstream.Server) money.Nanos {
	tr := f.Truth()
	return money.Nanos(tr["input"]*inputNanos + tr["output"]*outputNanos)
}

// scrape returns the admin listener's /metrics text.
func scrape(t *testing.T, adminURL string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get(adminURL + "/metrics")
	if err != nil {
		t.Errorf("GET /metrics: %v", err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitMetric scrapes /metrics until ok holds (bounded) and returns the
// last text.
func waitMetric(t *testing.T, adminURL string, within time.Duration, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		m := scrape(t, adminURL)
		if ok(m) || time.Now().After(deadline) {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metricSum adds up the samples of a metric whose label set contains every
// one of labels (written as `name="value"`).
func metricSum(text, name string, labels ...string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue // a longer metric name
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				match = false
			}
		}
		if !match {
			continue
		}
		f := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// canaries are every secret the suite runs with, raw and base64-encoded
// (a header or log that encodes a secret leaks it just the same).
func canaries() []string {
	var out []string
	for _, s := range []string{testutil.CanaryKey, testutil.CanaryToken, testutil.OtherToken, testutil.AdminToken, replacementToken} {
		out = append(out, s,
			base64.StdEncoding.EncodeToString([]byte(s)),
			base64.RawURLEncoding.EncodeToString([]byte(s)))
	}
	return out
}

// leaks counts canary occurrences in texts.
func leaks(texts ...string) int {
	n := 0
	for _, tx := range texts {
		for _, c := range canaries() {
			n += strings.Count(tx, c)
		}
	}
	return n
}

// replacementToken replaces the canary token in the revocation test.
const replacementToken = "clade_sk_REPLACEMENTSERVICETOKEN0123456789ab"

// assertNoPanic fails if a log shows a panic or a goroutine trace.
func assertNoPanic(t *testing.T, where, logs string) {
	t.Helper()
	for _, bad := range []string{"panic", "goroutine ", "runtime error"} {
		if strings.Contains(logs, bad) {
			i := strings.Index(logs, bad)
			t.Errorf("%s contain %q: ...%s...", where, bad, logs[max(0, i-200):min(len(logs), i+300)])
		}
	}
}
