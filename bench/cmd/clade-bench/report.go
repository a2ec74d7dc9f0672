package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// acc accumulates one (phase, mode, target) over the rounds.
type acc struct {
	ok, failed int64
	wall       time.Duration
	lat        []time.Duration
	cpu        time.Duration
	sched      schedStat // CPU to the nanosecond, and wake-ups
	redisCPU   time.Duration
	redisCmds  map[string]int64
	alloc      float64
	conns      int64
	firstErr   string
	roundCPU   []float64         // µs per request in each round
	roundSched []float64         // the same from the scheduler's account
	roundLat   [][]time.Duration // each round's latency samples
	overhead   buckets           // the gateway's own pre-forward overhead
}

// holdStats is the RSS phase's result for one proxy.
type holdStats struct {
	open, gauge int64 // streams open at the plateau (client side; gateway gauge)
	rss, hwm    int64
	ok, failed  int64
	firstErr    string
}

// roundTrip is what MONITOR saw of one mode's requests.
type roundTrip struct {
	cmds     map[string]int64
	requests int64
}

func (rt roundTrip) perReq() float64 {
	var n int64
	for _, v := range rt.cmds {
		n += v
	}
	if rt.requests == 0 {
		return 0
	}
	return float64(n) / float64(rt.requests)
}

func (rt roundTrip) String() string {
	var parts []string
	for k, v := range rt.cmds {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, float64(v)/float64(max(rt.requests, 1))))
	}
	slices.Sort(parts)
	return fmt.Sprintf("%.2f (%s)", rt.perReq(), strings.Join(parts, ", "))
}

type report struct {
	o       options
	phases  []phase
	accs    map[string]*acc
	hold    map[string]holdStats
	rtt     map[string]roundTrip
	spend   []string
	elapsed time.Duration
}

func newReport(o options, phases []phase) *report {
	return &report{o: o, phases: phases, accs: map[string]*acc{}, hold: map[string]holdStats{}, rtt: map[string]roundTrip{}}
}

func key(phase, mode, target string) string { return phase + "/" + mode + "/" + target }

func (r *report) get(phase, mode, target string) *acc {
	k := key(phase, mode, target)
	a := r.accs[k]
	if a == nil {
		a = &acc{redisCmds: map[string]int64{}}
		r.accs[k] = a
	}
	return a
}

func (a *acc) perReq(v float64) float64 {
	if a.ok == 0 {
		return 0
	}
	return v / float64(a.ok)
}

func (a *acc) cpuPerReq() float64 { return a.perReq(float64(a.cpu.Nanoseconds()) / 1e3) }

func (a *acc) schedPerReq() float64 { return a.perReq(float64(a.sched.cpu.Nanoseconds()) / 1e3) }

func (a *acc) wakeupsPerReq() float64 { return a.perReq(float64(a.sched.slices)) }

// scriptsPerReq is the script calls per request: each a round trip (the
// gateway sends Redis nothing but scripts on the request path).
func (a *acc) scriptsPerReq() float64 {
	return a.perReq(float64(a.redisCmds["evalsha"] + a.redisCmds["eval"] + a.redisCmds["evalsha_ro"] + a.redisCmds["eval_ro"]))
}

func (a *acc) redisPerReq() float64 { return a.perReq(float64(a.redisCPU.Nanoseconds()) / 1e3) }

func (a *acc) cmdsPerReq() float64 {
	var n int64
	for _, v := range a.redisCmds {
		n += v
	}
	return a.perReq(float64(n))
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q*float64(len(s)-1) + 0.5)
	return s[i]
}

// bound prints a histogram bucket bound given in seconds.
func bound(le float64) string {
	if math.IsInf(le, 1) {
		return "+Inf"
	}
	return time.Duration(le * float64(time.Second)).String()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func (r *report) print(stdout io.Writer, outPath string) error {
	w := stdout
	var f *os.File
	if outPath != "" {
		var err error
		if f, err = os.Create(outPath); err != nil {
			return err
		}
		defer f.Close()
		w = io.MultiWriter(stdout, f)
	}
	o := r.o
	fmt.Fprintf(w, "clade-bench: %d interleaved rounds, %s per segment; %s; %d text deltas per response\n",
		o.rounds, o.duration, r.describePhases(), o.deltas)
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s RAM, %s/%s, %s; run took %s\n\n", runtime.NumCPU(), cpuModel(), memTotal(),
		runtime.GOOS, runtime.GOARCH, runtime.Version(), r.elapsed.Round(time.Second))

	if r.has("max") || r.has("lat") {
		r.mainTable(w)
	}
	if r.hasSlow() {
		fmt.Fprintln(w)
		r.slowTable(w)
	}
	for _, mode := range modes {
		for _, name := range r.names() {
			if rt, ok := r.rtt[mode+"/"+name]; ok && r.has("max") {
				fmt.Fprintf(w, "\n%s %s per request: round trips (MONITOR, %d requests) %s; commands incl. inside Lua (INFO commandstats) %s",
					mode, name, rt.requests, rt, cmdBreakdown(r.get("max", mode, name)))
			}
		}
	}
	for _, p := range r.phases {
		if !p.slow {
			continue
		}
		for _, mode := range modes {
			for _, name := range r.names() {
				if a := r.get(p.name, mode, name); len(a.redisCmds) > 0 && a.cmdsPerReq() > 0 {
					fmt.Fprintf(w, "\n%s %s %s per request: commands incl. inside Lua (INFO commandstats) %s", p.name, mode, name, cmdBreakdown(a))
				}
			}
		}
	}
	fmt.Fprintln(w)
	// Where a latency tail comes from: each proxy's own time from a
	// request's arrival in its handler to its forwarding (the gateway's
	// admission included), from its histogram; bare measures the same
	// window, so a tail both show is the machine's.
	for _, p := range r.phases {
		if p.closed {
			continue
		}
		for _, mode := range modes {
			for _, name := range r.names() {
				a := r.get(p.name, mode, name)
				p50, ok := a.overhead.quantile(.5)
				if !ok {
					continue
				}
				p99, _ := a.overhead.quantile(.99)
				p999, _ := a.overhead.quantile(.999)
				fmt.Fprintf(w, "\n%s %s at %.0f req/s (%s): in-proxy time before forwarding p50 ≤ %s, p99 ≤ %s, p99.9 ≤ %s (clade_gateway_overhead_seconds buckets)",
					mode, name, p.rate, p.name, bound(p50), bound(p99), bound(p999))
			}
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	r.targets(w)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "checks:")
	keys := slices.Sorted(maps.Keys(r.accs))
	for _, k := range keys {
		if a := r.accs[k]; a.failed > 0 {
			fmt.Fprintf(w, "  FAILED requests in %s: %d (first: %s)\n", k, a.failed, a.firstErr)
		}
	}
	for _, name := range r.names() {
		h, ok := r.hold[name]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "  %s streams phase: %d open at once (gateway gauge %d), %d completed, %d failed %s\n",
			name, h.open, h.gauge, h.ok, h.failed, h.firstErr)
	}
	for _, s := range r.spend {
		fmt.Fprintln(w, "  "+s)
	}
	return nil
}

func (r *report) has(phase string) bool {
	for _, p := range r.phases {
		if p.name == phase {
			return true
		}
	}
	return false
}

func (r *report) hasSlow() bool {
	for _, p := range r.phases {
		if p.slow {
			return true
		}
	}
	return false
}

// describePhases is the report's first line: what each phase was.
func (r *report) describePhases() string {
	var parts []string
	for _, p := range r.phases {
		sse := ""
		if p.spacing > 0 {
			sse = ", SSE event spacing " + p.spacing.String()
		}
		if p.closed {
			parts = append(parts, fmt.Sprintf("%s = closed loop, %d JSON / %d SSE workers, upstream TTFB %s%s", p.name, p.concJSON, p.concSSE, p.ttfb, sse))
		} else {
			parts = append(parts, fmt.Sprintf("%s = open loop %.0f req/s, upstream TTFB %s%s", p.name, p.rate, p.ttfb, sse))
		}
	}
	return strings.Join(parts, "; ")
}

// names are the targets in table order.
func (r *report) names() []string {
	var names []string
	for _, n := range []string{"direct", "bare", "gw-embedded", "gw-redis", "gw-grants", "gw-redis-ab"} {
		for _, p := range r.phases {
			// get creates accumulators on first read: a target counts
			// only once a request was measured for it.
			if a, ok := r.accs[key(p.name, "json", n)]; ok && a.ok+a.failed > 0 {
				names = append(names, n)
				break
			}
		}
	}
	return names
}
