package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux the bench runs on (it is fixed by the kernel ABI on x86 and arm64).
const clockTicks = 100

// procCPU returns the process's user+system CPU time so far, all threads,
// from /proc/<pid>/stat (fields 14 and 15).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields resume after ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short line", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// schedStat is a process's scheduler account, summed over its threads.
type schedStat struct {
	cpu    time.Duration // time on a CPU, to the nanosecond
	slices int64         // times a thread was put on a CPU: wake-ups
}

// procSched sums /proc/<pid>/task/*/schedstat (time on CPU in ns, time
// waiting to run, timeslices run). /proc/<pid>/stat counts CPU in 10 ms
// ticks: at 100 requests/s a segment's CPU is a few of them, and the
// ratio to bare would be mostly rounding. A thread that exits takes its
// counts with it; the Go runtime keeps its threads.
func procSched(pid int) (schedStat, error) {
	var st schedStat
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return st, err
	}
	for _, task := range tasks {
		b, err := os.ReadFile(dir + "/" + task.Name() + "/schedstat")
		if err != nil {
			continue // the thread exited meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) < 3 {
			return st, fmt.Errorf("%s/%s/schedstat: short line", dir, task.Name())
		}
		ns, err1 := strconv.ParseInt(f[0], 10, 64)
		n, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return st, fmt.Errorf("%s/%s/schedstat: bad counts", dir, task.Name())
		}
		st.cpu += time.Duration(ns)
		st.slices += n
	}
	return st, nil
}

// procIO returns the read and write system calls the process has made
// (/proc/<pid>/io syscr, syscw): sockets and files alike.
func procIO(pid int) (reads, writes int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		}
	}
	return reads, writes, nil
}

// procMem returns VmRSS and VmHWM (peak RSS) in bytes.
func procMem(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", k, err)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, sc.Err()
}

// resetPeakRSS resets VmHWM to the current RSS (Linux 4.0+), so a phase's
// peak is not an earlier phase's.
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// redisStats is what INFO says about Redis's own work.
type redisStats struct {
	cpu  time.Duration    // used_cpu_user + used_cpu_sys
	cmds map[string]int64 // commandstats calls by command, INFO itself left out
}

func readRedis(ctx context.Context, c *redis.Client) (redisStats, error) {
	s, err := c.Info(ctx, "cpu", "commandstats").Result()
	if err != nil {
		return redisStats{}, fmt.Errorf("redis INFO: %w", err)
	}
	st := redisStats{cmds: map[string]int64{}}
	var cpu float64
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case k == "used_cpu_user" || k == "used_cpu_sys":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return st, fmt.Errorf("redis INFO %s: %w", k, err)
			}
			cpu += f
		case strings.HasPrefix(k, "cmdstat_"):
			name := strings.TrimPrefix(k, "cmdstat_")
			if name == "info" {
				continue
			}
			calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
			n, err := strconv.ParseInt(calls, 10, 64)
			if err != nil {
				return st, fmt.Errorf("redis INFO %s: %w", k, err)
			}
			st.cmds[name] = n
		}
	}
	st.cpu = time.Duration(cpu * float64(time.Second))
	return st, nil
}

// metricValue reads one unlabelled series from a Prometheus text endpoint.
// buckets is a cumulative Prometheus histogram: count of observations
// at or below each upper bound (seconds), by bound.
type buckets map[float64]float64

// scrapeProc reads a proxy's allocation counter and, for a gateway, its
// pre-forward overhead histogram (absent for the bare proxy: nil).
func scrapeProc(url string) (alloc float64, overhead buckets, err error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "go_memstats_alloc_bytes_total "); ok {
			alloc, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
			found = err == nil
			continue
		}
		rest, ok := strings.CutPrefix(line, `clade_gateway_overhead_seconds_bucket{le="`)
		if !ok {
			continue
		}
		le, count, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		b, err1 := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
		n, err2 := strconv.ParseFloat(strings.TrimSpace(count), 64)
		if err1 == nil && err2 == nil {
			if overhead == nil {
				overhead = buckets{}
			}
			overhead[b] = n
		}
	}
	if err := sc.Err(); err != nil {
		return 0, nil, err
	}
	if !found {
		return 0, nil, fmt.Errorf("%s: no go_memstats_alloc_bytes_total", url)
	}
	return alloc, overhead, nil
}

// quantile is the upper bound of the bucket holding the q-quantile, the
// most a histogram can say.
func (b buckets) quantile(q float64) (float64, bool) {
	total := b[math.Inf(1)]
	if total <= 0 {
		return 0, false
	}
	bounds := slices.Sorted(maps.Keys(b))
	for _, le := range bounds {
		if b[le] >= q*total {
			return le, true
		}
	}
	return math.Inf(1), true
}

func metricValue(url, name string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", url, name)
}

// fakeStats are the fake upstream's counters.
type fakeStats struct {
	ConnsOpened int64 `json:"conns_opened"`
	ConnsOpen   int64 `json:"conns_open"`
	Messages    int64 `json:"messages"`
}

func readFake(url string) (fakeStats, error) {
	var fs fakeStats
	resp, err := http.Get(url)
	if err != nil {
		return fs, err
	}
	defer resp.Body.Close()
	return fs, json.NewDecoder(resp.Body).Decode(&fs)
}
