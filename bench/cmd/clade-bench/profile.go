package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// profileAll profiles every proxy that serves profiles at the highest
// open-loop slow rate, JSON and SSE, one at a time: a CPU profile of
// -profile-for, its `go tool pprof -top`, and per request the goroutines
// the process created and the times its threads were woken.
func (e *env) profileAll() error {
	var p phase
	for _, q := range e.phases {
		if q.slow && !q.closed && q.rate > p.rate {
			p = q
		}
	}
	if p.rate == 0 {
		p = phase{name: "r300", rate: slowTargetRate, ttfb: e.o.slowTTFB, spacing: e.o.latSpacing, slow: true}
	}
	if err := os.MkdirAll(e.o.profile, 0o755); err != nil {
		return err
	}
	var summary strings.Builder
	fmt.Fprintf(&summary, "profiles at %.0f req/s, upstream TTFB %s, %s each\n", p.rate, p.ttfb, e.o.profileFor)
	for _, t := range e.targets {
		if t.pprof == "" {
			continue
		}
		for _, mode := range modes {
			line, err := e.profileOne(t, p, mode)
			if err != nil {
				return fmt.Errorf("profile %s %s: %w", t.name, mode, err)
			}
			fmt.Fprintln(os.Stderr, line)
			summary.WriteString(line + "\n")
		}
	}
	return os.WriteFile(filepath.Join(e.o.profile, "summary.txt"), []byte(summary.String()), 0o644)
}

func (e *env) profileOne(t *target, p phase, mode string) (string, error) {
	e.load(t, p, mode, time.Second) // warm-up
	done := make(chan segment, 1)
	go func() { done <- e.load(t, p, mode, e.o.profileFor+e.o.traceFor+2*time.Second) }()
	time.Sleep(time.Second)
	rt0, err := runtimeCounters(t.pprof)
	if err != nil {
		return "", err
	}
	sc0, err := procSched(t.proc.pid())
	if err != nil {
		return "", err
	}
	r0, w0, err := procIO(t.proc.pid())
	if err != nil {
		return "", err
	}
	f0, err := readFake(e.fakeURL)
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("%s-%s-%s", t.name, p.name, mode)
	prof := filepath.Join(e.o.profile, name+".cpu.pprof")
	if err := fetchTo(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", t.pprof, int(e.o.profileFor.Seconds())), prof); err != nil {
		return "", err
	}
	f1, err := readFake(e.fakeURL)
	if err != nil {
		return "", err
	}
	sc1, err := procSched(t.proc.pid())
	if err != nil {
		return "", err
	}
	r1, w1, err := procIO(t.proc.pid())
	if err != nil {
		return "", err
	}
	rt1, err := runtimeCounters(t.pprof)
	if err != nil {
		return "", err
	}
	if err := fetchTo(t.pprof+"/debug/pprof/goroutine?debug=1", filepath.Join(e.o.profile, name+".goroutines.txt")); err != nil {
		return "", err
	}
	if e.o.traceFor > 0 {
		// After the counters: tracing costs the proxy CPU of its own.
		if err := fetchTo(fmt.Sprintf("%s/debug/pprof/trace?seconds=%g", t.pprof, e.o.traceFor.Seconds()), filepath.Join(e.o.profile, name+".trace")); err != nil {
			return "", err
		}
	}
	seg := <-done
	failed := ""
	if seg.failed > 0 {
		// Said, not fatal: the profile of a proxy that failed requests is
		// what shows why.
		failed = fmt.Sprintf("; %d requests FAILED (first: %.200s)", seg.failed, seg.firstErr)
	}
	top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=40", prof).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %w\n%s", err, top)
	}
	if err := os.WriteFile(filepath.Join(e.o.profile, name+".top.txt"), top, 0o644); err != nil {
		return "", err
	}
	n := float64(f1.Messages - f0.Messages)
	if n <= 0 {
		return "", fmt.Errorf("no requests reached the upstream while profiling")
	}
	per := func(a, b uint64) float64 { return float64(b-a) / n }
	return fmt.Sprintf("%-11s %-4s %6.0f requests: CPU %4.0f µs/req, goroutines created %.2f/req, wake-ups %.2f/req, read/write syscalls %.1f/%.1f per req, GC cycles %.3f/req, goroutines %d%s",
		t.name, mode, n, float64((sc1.cpu-sc0.cpu).Nanoseconds())/1e3/n,
		per(rt0["/sched/goroutines-created:goroutines"], rt1["/sched/goroutines-created:goroutines"]),
		float64(sc1.slices-sc0.slices)/n, float64(r1-r0)/n, float64(w1-w0)/n,
		per(rt0["/gc/cycles/total:gc-cycles"], rt1["/gc/cycles/total:gc-cycles"]),
		rt1["/sched/goroutines:goroutines"], failed), nil
}

// runtimeCounters reads /debug/runtime: "name value" lines.
func runtimeCounters(base string) (map[string]uint64, error) {
	resp, err := http.Get(base + "/debug/runtime")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("/debug/runtime %s: %w", k, err)
		}
		out[k] = n
	}
	return out, sc.Err()
}

func fetchTo(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
