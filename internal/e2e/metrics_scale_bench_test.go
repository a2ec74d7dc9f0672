// Built without the race detector, as metrics_scale_test.go, whose
// gateway it measures.

//go:build !race

package e2e

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// scaleMaxRender is how long one replica may take to render /metrics at
// that scale.
const scaleMaxRender = 100 * time.Millisecond

// BenchmarkMetricsScrapeAtScale renders /metrics of the gateway
// TestMetricsAtScale builds; ns/op is one scrape, text format, gzip (as
// Prometheus asks), over loopback, including the read of every budget's
// level from Redis. bytes/scrape is the page, gzip-bytes/scrape what
// crossed the wire. cpu-ms/scrape is the process's CPU time per scrape
// (gateway and client, and whatever the gateway does in the background
// meanwhile), steadier than wall time on a busy machine.
//
// It fails when a scrape takes scaleMaxRender or more of CPU time: on a
// shared machine the wall time also measures the neighbours (it is
// reported as ns/op; with the machine to itself the two are close).
func BenchmarkMetricsScrapeAtScale(b *testing.B) {
	gw := startScaleGateway(b)
	var size, wire int
	status0, n0 := statusTime(scrape(b, gw.AdminURL))
	// Asking for gzip ourselves keeps the compressed body to measure.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	cpu0 := cpuTime(b)
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, gw.AdminURL+"/metrics", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var zipped, buf bytes.Buffer
		if _, err := io.Copy(&zipped, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Content-Encoding") != "gzip" {
			b.Fatalf("scrape not gzipped (%q)", resp.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(&zipped)
		if err != nil {
			b.Fatal(err)
		}
		wire = zipped.Len()
		if _, err := io.Copy(&buf, zr); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
	}
	cpu := (cpuTime(b) - cpu0) / time.Duration(b.N)
	b.ReportMetric(float64(size), "bytes/scrape")
	b.ReportMetric(float64(wire), "gzip-bytes/scrape")
	b.ReportMetric(float64(cpu)/float64(time.Millisecond), "cpu-ms/scrape")
	if cpu >= scaleMaxRender {
		b.Errorf("a scrape took %v of CPU time, want under %v", cpu, scaleMaxRender)
	}
	b.StopTimer()
	status1, n1 := statusTime(scrape(b, gw.AdminURL))
	b.ReportMetric((status1-status0)/(n1-n0)*1000, "store-ms/scrape")
}

// statusTime returns the time the budget store has spent reading budget
// levels, and how many reads it made.
func statusTime(mfs map[string]*dto.MetricFamily) (seconds, reads float64) {
	for _, m := range seriesWithValue(mfs, "clade_gateway_store_duration_seconds", "op", "status") {
		return m.GetHistogram().GetSampleSum(), float64(m.GetHistogram().GetSampleCount())
	}
	return 0, 0
}

func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countSeries counts the samples of a text-format page: one line per
// series a scraper stores (a classic histogram's buckets, sum and count
// each count).
func countSeries(text string) (int, map[string]int) {
	per := map[string]int{}
	histograms := map[string]bool{}
	n := 0
	for _, line := range strings.Split(text, "\n") {
		if h, ok := strings.CutPrefix(line, "# TYPE "); ok && strings.HasSuffix(h, " histogram") {
			histograms[strings.TrimSuffix(h, " histogram")] = true
		}
		if line == "" || line[0] == '#' {
			continue
		}
		n++
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if s, ok := strings.CutSuffix(name, suf); ok && histograms[s] {
				name = s
			}
		}
		per[name]++
	}
	return n, per
}

func topFamilies(per map[string]int, n int) []string {
	names := make([]string, 0, len(per))
	for k := range per {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return per[names[i]] > per[names[j]] })
	return names[:min(n, len(names))]
}
