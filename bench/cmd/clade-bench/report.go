package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
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

func (r *report) add(phase, mode, target string, seg segment, before, after snapshot) {
	a := r.get(phase, mode, target)
	a.ok += seg.ok
	a.failed += seg.failed
	a.wall += seg.wall
	a.lat = append(a.lat, seg.lat...)
	a.roundLat = append(a.roundLat, seg.lat)
	cpu := after.cpu - before.cpu
	a.cpu += cpu
	sched := schedStat{cpu: after.sched.cpu - before.sched.cpu, slices: after.sched.slices - before.sched.slices}
	a.sched.cpu += sched.cpu
	a.sched.slices += sched.slices
	if seg.ok > 0 {
		a.roundCPU = append(a.roundCPU, float64(cpu.Microseconds())/float64(seg.ok))
		a.roundSched = append(a.roundSched, float64(sched.cpu.Nanoseconds())/1e3/float64(seg.ok))
	}
	a.redisCPU += after.redis.cpu - before.redis.cpu
	for k, v := range after.redis.cmds {
		a.redisCmds[k] += v - before.redis.cmds[k]
	}
	a.alloc += after.alloc - before.alloc
	for le, n := range after.overhead {
		if a.overhead == nil {
			a.overhead = buckets{}
		}
		a.overhead[le] += n - before.overhead[le]
	}
	a.conns += after.fake.ConnsOpened - before.fake.ConnsOpened
	if a.firstErr == "" {
		a.firstErr = seg.firstErr
	}
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

// checkSpend counts each gateway's spend records: every complete response
// must have been metered, at the exact price of the fake's usage. For a
// gateway with Redis, the workspace budget's spend must then be exactly
// what the records add up to, with nothing left reserved.
func (r *report) checkSpend(ts []*target, rdb *redis.Client) error {
	for _, t := range ts {
		if t.spendLog == "" {
			continue
		}
		f, err := os.Open(t.spendLog)
		if err != nil {
			// -gw-env or -ab-env may send the spend log elsewhere: say so
			// instead of losing the run's table.
			r.spend = append(r.spend, fmt.Sprintf("%s: spend log not checked: %v", t.name, err))
			continue
		}
		var records, exact int64
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, `"msg":"spend"`) {
				continue
			}
			records++
			// 1,200 input and 300 output tokens of claude-sonnet-4-6.
			if strings.Contains(line, `"total_usd":"0.0081"`) {
				exact++
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return err
		}
		line := fmt.Sprintf("%s: %d spend records, %d at exactly $0.0081; %d complete responses sent to it",
			t.name, records, exact, t.completed.Load())
		if t.redis {
			line += "; " + budgetCheck(rdb, t.prefix, records, exact)
		}
		r.spend = append(r.spend, line)
	}
	return nil
}

// budgetCheck compares the workspace budget's window in Redis with the
// spend records: 8,100,000 nano-USD ($0.0081) each.
func budgetCheck(rdb *redis.Client, prefix string, records, exact int64) string {
	now := time.Now().UTC()
	key := "{" + prefix + "}:b:workspace:bench:monthly:" + time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Format("20060102")
	v, err := rdb.HMGet(context.Background(), key, "spent", "rsv").Result()
	if err != nil {
		return "budget not read: " + err.Error()
	}
	num := func(x any) int64 {
		s, _ := x.(string)
		n, _ := strconv.ParseInt(s, 10, 64)
		return n
	}
	spent, rsv, want := num(v[0]), num(v[1]), exact*8_100_000
	verdict := "exact"
	if spent != want || rsv != 0 || records != exact {
		verdict = "MISMATCH"
	}
	return fmt.Sprintf("workspace budget spent %d nano-USD (records: %d), reserved %d: %s", spent, want, rsv, verdict)
}

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

type table struct{ rows [][]string }

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// write prints a Markdown table with padded columns (readable as text too).
func (t *table) write(w io.Writer) {
	width := make([]int, len(t.rows[0]))
	for _, row := range t.rows {
		for i, c := range row {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for n, row := range t.rows {
		fmt.Fprint(w, "|")
		for i, c := range row {
			fmt.Fprintf(w, " %s%s |", c, strings.Repeat(" ", width[i]-len([]rune(c))))
		}
		fmt.Fprintln(w)
		if n == 0 {
			fmt.Fprint(w, "|")
			for i := range row {
				fmt.Fprintf(w, "%s|", strings.Repeat("-", width[i]+2))
			}
			fmt.Fprintln(w)
		}
	}
}

func f0(v float64) string   { return fmt.Sprintf("%.0f", v) }
func f2(v float64) string   { return fmt.Sprintf("%.2f", v) }
func sign(v float64) string { return fmt.Sprintf("%+.2f", v) }

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

// mainTable is the saturation and 1,000 requests/s table: max and lat.
func (r *report) mainTable(w io.Writer) {

	t := &table{}
	t.add("mode", "target", "max req/s", "p50 ms", "p90 ms", "p99 ms", "+p50 vs direct", "+p50 vs bare", "+p99 vs bare",
		"CPU µs/req", "×bare", "CPU µs/req @lat", "Redis CPU µs/req", "(CPU+Redis) ×bare", "Redis round trips/req", "Redis cmds/req",
		"alloc KB/req", "upstream conns opened max / lat", "RSS, 5k streams")
	for _, mode := range modes {
		direct, bare := r.get("lat", mode, "direct"), r.get("lat", mode, "bare")
		bareMax := r.get("max", mode, "bare")
		for _, name := range r.names() {
			mx, lt := r.get("max", mode, name), r.get("lat", mode, name)
			p50, p90, p99 := percentile(lt.lat, .5), percentile(lt.lat, .9), percentile(lt.lat, .99)
			row := []string{mode, name, f0(float64(mx.ok) / mx.wall.Seconds()), f2(ms(p50)), f2(ms(p90)), f2(ms(p99))}
			if name == "direct" {
				row = append(row, "", "", "")
			} else {
				row = append(row, diff(p50, direct.lat, .5))
				if name == "bare" {
					row = append(row, "", "")
				} else {
					row = append(row, diff(p50, bare.lat, .5)+roundRange(lt, bare, .5), diff(p99, bare.lat, .99)+roundRange(lt, bare, .99))
				}
			}
			if name == "direct" {
				row = append(row, "", "", "", "", "", "", "", "")
			} else {
				ratio := mx.cpuPerReq() / bareMax.cpuPerReq()
				row = append(row, f0(mx.cpuPerReq()), f2(ratio)+spread(mx, bareMax), f0(lt.cpuPerReq()))
				if rt, ok := r.rtt[mode+"/"+name]; ok {
					row = append(row, f0(mx.redisPerReq()), f2((mx.cpuPerReq()+mx.redisPerReq())/bareMax.cpuPerReq()),
						f2(rt.perReq()), f2(mx.cmdsPerReq()))
				} else {
					row = append(row, "", "", "", "")
				}
				row = append(row, f2(mx.perReq(mx.alloc)/1024))
			}
			row = append(row, fmt.Sprintf("%d / %d", mx.conns, lt.conns))
			if h, ok := r.hold[name]; ok && mode == "sse" {
				row = append(row, fmt.Sprintf("%s (peak %s)", mib(h.rss), mib(h.hwm)))
			} else {
				row = append(row, "")
			}
			// A phase left out (-phases) leaves its columns blank.
			if !r.has("lat") {
				blank(row, 3, 4, 5, 6, 7, 8, 11)
			}
			if !r.has("max") {
				blank(row, 2, 9, 10, 12, 13, 15, 16)
			}
			t.add(row...)
		}
	}
	t.write(w)
}

func blank(row []string, cols ...int) {
	for _, c := range cols {
		if c < len(row) {
			row[c] = ""
		}
	}
}

// slowTable is the realistic-rate table: every slow phase, each gateway
// next to bare in the same run.
func (r *report) slowTable(w io.Writer) {
	t := &table{}
	t.add("phase", "mode", "target", "req/s", "p50 ms", "p99 ms", "+p50 vs bare", "+p99 vs bare", "CPU µs/req", "×bare",
		"Redis CPU µs/req", "(CPU+Redis) ×bare", "Redis script calls/req", "Redis cmds/req", "wake-ups/req", "alloc KB/req")
	for _, p := range r.phases {
		if !p.slow {
			continue
		}
		for _, mode := range modes {
			bare := r.get(p.name, mode, "bare")
			for _, name := range r.names() {
				if name == "direct" {
					continue
				}
				a := r.get(p.name, mode, name)
				if a.ok == 0 && a.failed == 0 {
					continue
				}
				p50, p99 := percentile(a.lat, .5), percentile(a.lat, .99)
				row := []string{p.name, mode, name, f0(float64(a.ok) / a.wall.Seconds()), f2(ms(p50)), f2(ms(p99))}
				if name == "bare" {
					row = append(row, "", "")
				} else {
					row = append(row, diff(p50, bare.lat, .5)+roundRange(a, bare, .5), diff(p99, bare.lat, .99)+roundRange(a, bare, .99))
				}
				ratio := a.schedPerReq() / bare.schedPerReq()
				row = append(row, f0(a.schedPerReq()), f2(ratio)+spreadOf(a.roundSched, bare.roundSched))
				if name == "bare" || name == "gw-embedded" {
					row = append(row, "", "", "", "")
				} else {
					row = append(row, f0(a.redisPerReq()), f2((a.schedPerReq()+a.redisPerReq())/bare.schedPerReq()),
						f2(a.scriptsPerReq()), f2(a.cmdsPerReq()))
				}
				row = append(row, f2(a.wakeupsPerReq()), f2(a.perReq(a.alloc)/1024))
				t.add(row...)
			}
		}
	}
	t.write(w)
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
			if _, ok := r.accs[key(p.name, "json", n)]; ok {
				names = append(names, n)
				break
			}
		}
	}
	return names
}

// diff is v less the q-quantile of ref, or blank when ref did not run.
func diff(v time.Duration, ref []time.Duration, q float64) string {
	if len(ref) == 0 {
		return ""
	}
	return sign(ms(v - percentile(ref, q)))
}

// roundDiffs are the differences of the q-th latency percentile to the
// bare proxy's, round by round. The pooled figure can be one bad moment of
// the machine during one target's segment; these show whether it was.
func roundDiffs(a, bare *acc, q float64) []float64 {
	if len(a.roundLat) != len(bare.roundLat) || len(a.roundLat) < 2 {
		return nil
	}
	d := make([]float64, len(a.roundLat))
	for i := range a.roundLat {
		d[i] = ms(percentile(a.roundLat[i], q) - percentile(bare.roundLat[i], q))
	}
	return d
}

// roundRange is the range of roundDiffs, for a table cell.
func roundRange(a, bare *acc, q float64) string {
	d := roundDiffs(a, bare, q)
	if d == nil {
		return ""
	}
	return fmt.Sprintf(" (%+.2f…%+.2f)", slices.Min(d), slices.Max(d))
}

// roundList is roundDiffs spelled out, for a target line.
func roundList(a, bare *acc, q float64) string {
	d := roundDiffs(a, bare, q)
	if d == nil {
		return ""
	}
	parts := make([]string, len(d))
	for i, x := range d {
		parts[i] = fmt.Sprintf("%+.2f", x)
	}
	return "; by round " + strings.Join(parts, ", ")
}

// spread is the range of the per-round CPU ratio to the bare proxy.
func spread(a, bare *acc) string { return spreadOf(a.roundCPU, bare.roundCPU) }

func spreadOf(a, bare []float64) string {
	if len(a) != len(bare) || len(a) < 2 {
		return ""
	}
	lo, hi := 1e18, 0.0
	for i := range a {
		x := a[i] / bare[i]
		lo, hi = min(lo, x), max(hi, x)
	}
	return fmt.Sprintf(" (%.2f–%.2f)", lo, hi)
}

func cmdBreakdown(a *acc) string {
	var parts []string
	for k, v := range a.redisCmds {
		if v > 0 {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, a.perReq(float64(v))))
		}
	}
	slices.Sort(parts)
	return fmt.Sprintf("%.2f (%s)", a.cmdsPerReq(), strings.Join(parts, ", "))
}

// targets checks the overhead targets (bench/README.md) against this
// run's figures.
func (r *report) targets(w io.Writer) {
	fmt.Fprintln(w, "targets:")
	// Every gateway in the run is checked, so a run of some targets
	// (-targets bare,gw-grants) still gets its verdicts.
	var gws, shared []string // shared: the gateways with Redis
	for _, gw := range []string{"gw-embedded", "gw-redis", "gw-grants"} {
		if slices.Contains(r.names(), gw) {
			gws = append(gws, gw)
			if gw != "gw-embedded" {
				shared = append(shared, gw)
			}
		}
	}
	if !slices.Contains(r.names(), "bare") || len(gws) == 0 {
		fmt.Fprintln(w, "  not checked: they need bare and a gateway in the run")
		return
	}
	check := func(ok bool, format string, a ...any) {
		mark := "PASS"
		if !ok {
			mark = "MISS"
		}
		fmt.Fprintf(w, "  %s  %s\n", mark, fmt.Sprintf(format, a...))
	}
	r.slowTargets(check)
	hasMax, hasLat := r.has("max"), r.has("lat")
	for _, mode := range modes {
		bare := r.get("max", mode, "bare").cpuPerReq()
		for _, gw := range gws {
			if !hasMax {
				break
			}
			a := r.get("max", mode, gw)
			check(a.cpuPerReq() <= 1.5*bare, "%s %s CPU/request %.0f µs = %.2f× bare (≤ 1.5×)", mode, gw, a.cpuPerReq(), a.cpuPerReq()/bare)
		}
		// The embedded store has no Redis to share the work with: its own
		// CPU and throughput must stay near bare's.
		if slices.Contains(gws, "gw-embedded") {
			a, b := r.get("max", mode, "gw-embedded"), r.get("max", mode, "bare")
			check(a.cpuPerReq() <= 1.15*bare, "%s gw-embedded CPU/request %.0f µs = %.2f× bare (≤ 1.15×)", mode, a.cpuPerReq(), a.cpuPerReq()/bare)
			rate, bareRate := float64(a.ok)/a.wall.Seconds(), float64(b.ok)/b.wall.Seconds()
			check(rate >= 0.9*bareRate, "%s gw-embedded max %.0f req/s = %.0f%% of bare's %.0f (≥ 90%%)", mode, rate, 100*rate/bareRate, bareRate)
		}
		for _, gw := range shared {
			if !hasMax {
				break
			}
			a := r.get("max", mode, gw)
			tot := a.cpuPerReq() + a.redisPerReq()
			check(tot <= 2*bare, "%s %s + Redis CPU/request %.0f µs = %.2f× bare (≤ 2×)", mode, gw, tot, tot/bare)
		}
		ba := r.get("lat", mode, "bare")
		for _, gw := range gws {
			if !hasLat {
				break
			}
			a := r.get("lat", mode, gw)
			d50 := ms(percentile(a.lat, .5) - percentile(ba.lat, .5))
			d99 := ms(percentile(a.lat, .99) - percentile(ba.lat, .99))
			// The check is on the pooled samples; the rounds are shown.
			check(d50 < 0.3, "%s %s added p50 over bare %+.2f ms at %.0f req/s (< 0.3 ms)%s", mode, gw, d50, r.o.rate, roundList(a, ba, .5))
			check(d99 <= 2, "%s %s p99 over bare %+.2f ms (within 2 ms)%s", mode, gw, d99, roundList(a, ba, .99))
		}
		for _, gw := range shared {
			if rt, ok := r.rtt[mode+"/"+gw]; ok {
				check(rt.perReq() <= 2, "%s %s Redis round trips/request %.2f (≤ 2)", mode, gw, rt.perReq())
			}
		}
		for _, gw := range gws {
			if !hasMax {
				break
			}
			a := r.get("max", mode, gw)
			check(a.conns == 0, "%s %s upstream connections opened at fixed concurrency once warm: %d in %d requests (0); at the fixed rate: %d",
				mode, gw, a.conns, a.ok+a.failed, r.get("lat", mode, gw).conns)
		}
	}
	for _, gw := range gws {
		if h, ok := r.hold[gw]; ok {
			check(h.hwm < 1<<30 && h.open >= int64(r.o.streams), "%s %d of %d streams open at once: RSS %s, peak %s (< 1 GiB)",
				gw, h.open, r.o.streams, mib(h.rss), mib(h.hwm))
		}
	}
}

// slowTargetRate is the rate the realistic-shape targets hold at.
const slowTargetRate = 300

// slowTargets checks the gateway with Redis as it ships (gw-grants)
// against bare in each open-loop slow phase at slowTargetRate or more:
// what a real service's traffic costs, not a saturated machine's.
func (r *report) slowTargets(check func(bool, string, ...any)) {
	for _, p := range r.phases {
		if !p.slow || p.closed || p.rate < slowTargetRate || !slices.Contains(r.names(), "gw-grants") {
			continue
		}
		for _, mode := range modes {
			a, bare := r.get(p.name, mode, "gw-grants"), r.get(p.name, mode, "bare")
			if a.ok == 0 || bare.ok == 0 {
				continue
			}
			cpu, b := a.schedPerReq(), bare.schedPerReq()
			tot := cpu + a.redisPerReq()
			d50 := ms(percentile(a.lat, .5) - percentile(bare.lat, .5))
			d99 := ms(percentile(a.lat, .99) - percentile(bare.lat, .99))
			at := fmt.Sprintf("at %.0f req/s, upstream TTFB %s", p.rate, p.ttfb)
			check(cpu <= 1.2*b, "%s gw-grants CPU/request %.0f µs = %.2f× bare %s (≤ 1.2×)", mode, cpu, cpu/b, at)
			check(tot <= 1.35*b, "%s gw-grants + Redis CPU/request %.0f µs = %.2f× bare %s (≤ 1.35×)", mode, tot, tot/b, at)
			check(d50 < 0.2, "%s gw-grants added p50 over bare %+.2f ms %s (< 0.2 ms)%s", mode, d50, at, roundList(a, bare, .5))
			check(d99 < 1, "%s gw-grants added p99 over bare %+.2f ms %s (< 1 ms)%s", mode, d99, at, roundList(a, bare, .99))
		}
	}
}
