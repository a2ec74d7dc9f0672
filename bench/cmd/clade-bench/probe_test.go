package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestProcCPUCountsThisProcess(t *testing.T) {
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the kernel's own account (getrusage) says this process
	// used 300 ms of CPU, however long a loaded machine takes to give it;
	// a wall-clock window would measure the machine's load instead.
	start := rusageCPU(t)
	for rusageCPU(t)-start < 300*time.Millisecond {
	}
	after, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// /proc counts in 10 ms ticks and other goroutines add their share, so
	// at least the spun CPU less a few ticks.
	if d := after - before; d < 250*time.Millisecond {
		t.Fatalf("CPU went up by %v while getrusage counted 300 ms", d)
	}
	rss, hwm, err := procMem(os.Getpid())
	if err != nil || rss <= 0 || hwm < rss {
		t.Fatalf("procMem = %d, %d, %v", rss, hwm, err)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(101-i)*time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0, time.Millisecond}, {0.5, 51 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := percentile(d, c.q); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}

// TestRoundTripsLeaveOutLua checks the two Redis counts the table shows:
// MONITOR counts what a client sends, INFO commandstats also what its
// scripts run inside Redis.
func TestRoundTripsLeaveOutLua(t *testing.T) {
	p, rdb, err := startRedis(t.TempDir())
	if err != nil {
		if os.Getenv("CLADE_TEST_NO_REDIS") == "1" {
			t.Skip("CLADE_TEST_NO_REDIS=1:", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close(); p.stop() })
	ctx := context.Background()
	before, err := readRedis(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := monitorRoundTrips(rdb.Options().Addr, func() {
		script := `redis.call('SET', KEYS[1], 1); redis.call('GET', KEYS[1]); return redis.call('GET', KEYS[1])`
		if err := rdb.Eval(ctx, script, []string{"k"}).Err(); err != nil {
			t.Error(err)
		}
		if err := rdb.Get(ctx, "k").Err(); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if cmds["eval"] != 1 || cmds["get"] != 1 || cmds["set"] != 0 {
		t.Errorf("MONITOR counted %v, want eval 1 and get 1 (the script's commands left out)", cmds)
	}
	after, err := readRedis(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	if d := after.cmds["get"] - before.cmds["get"]; d != 3 {
		t.Errorf("commandstats counted %d GETs, want 3 (two inside the script, one from the client)", d)
	}
	if d := after.cmds["set"] - before.cmds["set"]; d != 1 {
		t.Errorf("commandstats counted %d SETs, want 1", d)
	}
	if after.cpu < before.cpu {
		t.Errorf("Redis CPU went down: %v then %v", before.cpu, after.cpu)
	}
}

func TestScrapeProcReadsTheOverheadHistogram(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `# TYPE clade_gateway_overhead_seconds histogram
clade_gateway_overhead_seconds_bucket{le="0.0001"} 50
clade_gateway_overhead_seconds_bucket{le="0.0005"} 99
clade_gateway_overhead_seconds_bucket{le="0.001"} 100
clade_gateway_overhead_seconds_bucket{le="+Inf"} 100
clade_gateway_overhead_seconds_sum 0.02
clade_gateway_overhead_seconds_count 100
go_memstats_alloc_bytes_total 12345
`)
	}))
	defer srv.Close()
	alloc, b, err := scrapeProc(srv.URL)
	if err != nil || alloc != 12345 {
		t.Fatalf("alloc %v, %v", alloc, err)
	}
	for q, want := range map[float64]float64{.5: .0001, .99: .0005, .999: .001} {
		if got, ok := b.quantile(q); !ok || got != want {
			t.Errorf("q%v = %v (%v), want %v", q, got, ok, want)
		}
	}
	if _, ok := (buckets(nil)).quantile(.5); ok {
		t.Error("a proxy without the histogram has a quantile")
	}
}

// rusageCPU is this process's user plus system CPU time, as getrusage
// reports it.
func rusageCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
