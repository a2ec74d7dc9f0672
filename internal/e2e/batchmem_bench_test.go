package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// BenchmarkBatchBodyRSS sends a 200 MB batch creation through the gateway
// binary, running as its own process, and reports how much its resident
// set grew (peak VmHWM minus VmRSS before the request) against the body's
// size. Target: at most about 2× the body.
//
//	go test -run '^$' -bench BatchBodyRSS -benchtime 1x ./internal/e2e/
func BenchmarkBatchBodyRSS(b *testing.B) {
	const perRequest = 10 << 10
	const n = 20_000 // 20,000 × 10 KiB ≈ 200 MB
	body := batchBody(n, perRequest)
	f := fakeupstream.New(testutil.CanaryKey)
	up := httptest.NewServer(f)
	b.Cleanup(up.Close)
	dir := b.TempDir()
	p := testutil.StartProcess(b, testutil.BuildBinary(b), map[string]string{
		"CLADE_CONFIG":       testutil.WritePolicy(b, dir, basePolicy(testpolicy.Daily("1000000")).YAML()),
		"CLADE_UPSTREAM_URL": up.URL,
		"TEST_WORKSPACE_KEY": testutil.CanaryKey,
		"CLADE_LOG_LEVEL":    "warn",
	})
	client := &http.Client{Timeout: 5 * time.Minute}
	var worst float64
	for range b.N {
		before := procStatus(b, p.Pid(), "VmRSS")
		clearPeak(b, p.Pid())
		req, _ := http.NewRequest(http.MethodPost, p.URL+"/v1/messages/batches", bytes.NewReader(body))
		req.Header.Set("x-api-key", testutil.CanaryToken)
		req.Header.Set("content-type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("batch creation: %d %s", resp.StatusCode, out)
		}
		peak := procStatus(b, p.Pid(), "VmHWM")
		growth := float64(peak-before) / float64(len(body))
		worst = max(worst, growth)
		b.Logf("body %.1f MB; RSS before %.1f MB, peak %.1f MB: growth %.1f MB = %.2f× the body",
			mb(len(body)), mb(before), mb(peak), mb(peak-before), growth)
	}
	b.ReportMetric(mb(len(body)), "body-MB")
	b.ReportMetric(worst, "rss-growth/body")
}

func mb(n int) float64 { return float64(n) / (1 << 20) }

func batchBody(n, perRequest int) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"requests":[`)
	pad := strings.Repeat("x", perRequest-120)
	for i := range n {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"custom_id":"r%d","params":{"model":"claude-sonnet-4-6","max_tokens":64,"messages":[{"role":"user","content":"%s"}]}}`, i, pad)
	}
	buf.WriteString(`]}`)
	return buf.Bytes()
}

// procStatus reads a kB field of /proc/<pid>/status, in bytes.
func procStatus(b *testing.B, pid int, field string) int {
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// clearPeak resets VmHWM to the current RSS (Linux clear_refs "5").
func clearPeak(b *testing.B, pid int) {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		b.Fatalf("reset peak RSS: %v", err)
	}
}
