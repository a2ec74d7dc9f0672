package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

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
		if hasMax && slices.Contains(gws, "gw-embedded") {
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
