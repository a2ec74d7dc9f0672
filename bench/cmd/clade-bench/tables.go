package main

import (
	"fmt"
	"io"
	"strings"
)

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

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }

func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

func sign(v float64) string { return fmt.Sprintf("%+.2f", v) }

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
