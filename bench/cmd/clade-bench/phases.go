package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// snapshot is a target's counters at one instant.
type snapshot struct {
	cpu      time.Duration
	sched    schedStat // the same CPU to the nanosecond, and wake-ups
	alloc    float64
	redis    redisStats
	fake     fakeStats
	overhead buckets // the gateway's clade_gateway_overhead_seconds
}

func (e *env) snap(t *target) (snapshot, error) {
	var s snapshot
	var err error
	// Scrapes first, CPU last, so the scrape's own CPU stays out of the
	// window that follows (and the reverse order in snapAfter).
	if t.metrics != "" {
		if s.alloc, s.overhead, err = scrapeProc(t.metrics); err != nil {
			return s, err
		}
	}
	if s.fake, err = readFake(e.fakeURL); err != nil {
		return s, err
	}
	if t.redis {
		if s.redis, err = readRedis(context.Background(), e.rdb); err != nil {
			return s, err
		}
	}
	if t.proc != nil {
		if s.cpu, err = procCPU(t.proc.pid()); err != nil {
			return s, err
		}
		if s.sched, err = procSched(t.proc.pid()); err != nil {
			return s, err
		}
	}
	return s, nil
}

func (e *env) snapAfter(t *target) (snapshot, error) {
	var s snapshot
	var err error
	if t.proc != nil {
		if s.sched, err = procSched(t.proc.pid()); err != nil {
			return s, err
		}
		if s.cpu, err = procCPU(t.proc.pid()); err != nil {
			return s, err
		}
	}
	if t.redis {
		if s.redis, err = readRedis(context.Background(), e.rdb); err != nil {
			return s, err
		}
	}
	if s.fake, err = readFake(e.fakeURL); err != nil {
		return s, err
	}
	if t.metrics != "" {
		if s.alloc, s.overhead, err = scrapeProc(t.metrics); err != nil {
			return s, err
		}
	}
	return s, nil
}

// phase is one load shape every target is measured under.
type phase struct {
	name              string
	closed            bool // closed loop at fixed concurrency; else open loop at rate
	concJSON, concSSE int
	rate              float64
	ttfb, spacing     time.Duration
	// slow: a shape of real model traffic (an upstream slow to its first
	// byte, a rate well below saturation), reported in its own table; the
	// direct target is left out of it, bare is the reference.
	slow bool
}

var modes = []string{"json", "sse"}

// phaseList is the phases -phases selects: "max" is closed-loop at fixed
// concurrency (throughput, CPU per request); "lat" is open-loop at a fixed
// rate with a slow upstream (latency); "slow" is a closed loop at
// -slow-conc and an open loop at each of -slow-rates, all with the
// -slow-ttfb upstream.
func (o options) phaseList() ([]phase, error) {
	var ps []phase
	for _, name := range strings.Split(o.phases, ",") {
		switch strings.TrimSpace(name) {
		case "max":
			ps = append(ps, phase{name: "max", closed: true, concJSON: o.concJSON, concSSE: o.concSSE, spacing: o.spacing})
		case "lat":
			ps = append(ps, phase{name: "lat", rate: o.rate, ttfb: o.ttfb, spacing: o.latSpacing})
		case "slow":
			if o.slowConc > 0 {
				ps = append(ps, phase{name: fmt.Sprintf("c%d", o.slowConc), closed: true, concJSON: o.slowConc, concSSE: o.slowConc,
					ttfb: o.slowTTFB, spacing: o.latSpacing, slow: true})
			}
			for _, f := range strings.Split(o.slowRates, ",") {
				if f = strings.TrimSpace(f); f == "" {
					continue
				}
				rate, err := strconv.ParseFloat(f, 64)
				if err != nil || rate <= 0 {
					return nil, fmt.Errorf("-slow-rates: %q is not a positive rate", f)
				}
				ps = append(ps, phase{name: "r" + f, rate: rate, ttfb: o.slowTTFB, spacing: o.latSpacing, slow: true})
			}
		case "":
		default:
			return nil, fmt.Errorf("-phases: unknown phase %q (max, lat, slow)", name)
		}
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("-phases selects no phase")
	}
	return ps, nil
}

func (p phase) shape(mode string, deltas int) shape {
	return shape{stream: mode == "sse", ttfb: p.ttfb, spacing: p.spacing, deltas: deltas}
}

func (e *env) load(t *target, p phase, mode string, d time.Duration) segment {
	r := newRequester(t, p.shape(mode, e.o.deltas))
	var seg segment
	if p.closed {
		conc := p.concJSON
		if mode == "sse" {
			conc = p.concSSE
		}
		seg = closedLoop(r, conc, d)
	} else {
		seg = openLoop(r, p.rate, d)
	}
	t.completed.Add(seg.ok)
	return seg
}

// measure runs the interleaved rounds. Each round visits every phase, mode
// and target, in an order of targets that changes from round to round
// (roundOrder), and the page cache is written back before each target's
// turn, so what one target leaves behind lands on nobody's measurement.
func (e *env) measure(r *report) error {
	fmt.Fprintln(os.Stderr, "warming up every target ...")
	for _, t := range e.targets {
		for _, m := range modes {
			warm := phase{name: "max", closed: true, concJSON: e.o.concJSON, concSSE: e.o.concSSE, spacing: e.o.spacing}
			if seg := e.load(t, warm, m, time.Second); seg.failed > 0 {
				return fmt.Errorf("%s %s warm-up: %d failed: %s", t.name, m, seg.failed, seg.firstErr)
			}
		}
	}
	n := len(e.targets)
	for round := range e.o.rounds {
		order := roundOrder(n, round)
		for _, phase := range e.phases {
			for _, mode := range modes {
				for _, i := range order {
					t := e.targets[i]
					if phase.slow && t.proc == nil {
						continue // direct: bare is the reference here
					}
					// The gateways' logs and the embedded store's file leave
					// dirty pages; written back later, they stalled whichever
					// target ran then.
					syscall.Sync()
					e.load(t, phase, mode, e.o.warmup)
					time.Sleep(50 * time.Millisecond)
					before, err := e.snap(t)
					if err != nil {
						return fmt.Errorf("%s: %w", t.name, err)
					}
					seg := e.load(t, phase, mode, e.o.duration)
					time.Sleep(50 * time.Millisecond) // settlements that follow the last responses
					after, err := e.snapAfter(t)
					if err != nil {
						return fmt.Errorf("%s: %w", t.name, err)
					}
					r.add(phase.name, mode, t.name, seg, before, after)
					// Per-round p99 shows whether a gap in the pooled p99 is
					// every round's or one bad moment's.
					fmt.Fprintf(os.Stderr, "round %d %-4s %-4s %-11s %7.0f req/s  p50 %6.2fms  p99 %6.2fms  failed %d\n", round+1, phase.name, mode, t.name,
						float64(seg.ok)/seg.wall.Seconds(), ms(percentile(seg.lat, 0.5)), ms(percentile(seg.lat, 0.99)), seg.failed)
				}
			}
		}
	}
	return nil
}

// roundOrder is the order of n targets in a round. Round 0 keeps the
// listed order; later rounds use a fixed shuffle each. A rotation, as
// before, kept every target behind the same neighbour in every round: with
// five targets and three rounds gw-redis always followed the embedded
// store, whose writeback and backlog it inherited, and bare always
// followed direct, the lightest.
func roundOrder(n, round int) []int {
	if round == 0 {
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		return order
	}
	return rand.New(rand.NewPCG(uint64(round), 7)).Perm(n)
}

// roundTrips counts the commands gw-redis sends Redis per request with
// MONITOR on, at a low rate, apart from the measured segments.
func (e *env) roundTrips(r *report) error {
	for _, t := range e.targets {
		if !t.redis {
			continue
		}
		for _, mode := range modes {
			var seg segment
			cmds, err := monitorRoundTrips(e.rdb.Options().Addr, func() {
				seg = openLoop(newRequester(t, phase{ttfb: e.o.ttfb, spacing: e.o.latSpacing}.shape(mode, e.o.deltas)), 200, time.Second)
			})
			if err != nil {
				return fmt.Errorf("round trips: %w", err)
			}
			t.completed.Add(seg.ok)
			r.rtt[mode+"/"+t.name] = roundTrip{cmds: cmds, requests: seg.ok + seg.failed}
		}
	}
	return nil
}

// holdPhase opens o.streams SSE streams through each proxy at once and
// records the proxy's resident memory while they are all open.
func (e *env) holdPhase(r *report) error {
	for _, t := range e.targets {
		if t.proc == nil {
			continue
		}
		if err := resetPeakRSS(t.proc.pid()); err != nil {
			return fmt.Errorf("%s: reset peak RSS: %w", t.name, err)
		}
		rq := newRequester(t, shape{stream: true, spacing: e.o.streamSpacing, deltas: e.o.streamDeltas})
		var hs holdStats
		seg := holdStreams(rq, e.o.streams, e.o.streamRamp, func(open int64) {
			hs.open = open
			// Sample for a second: every stream is open and idle between events.
			for range 10 {
				rss, _, err := procMem(t.proc.pid())
				if err == nil && rss > hs.rss {
					hs.rss = rss
				}
				time.Sleep(100 * time.Millisecond)
			}
			if t.name != "bare" {
				if v, err := metricValue(t.metrics, "clade_gateway_streams_open"); err == nil {
					hs.gauge = int64(v)
				}
			}
		})
		_, hwm, err := procMem(t.proc.pid())
		if err != nil {
			return err
		}
		hs.hwm, hs.ok, hs.failed, hs.firstErr = hwm, seg.ok, seg.failed, seg.firstErr
		t.completed.Add(seg.ok)
		r.hold[t.name] = hs
		fmt.Fprintf(os.Stderr, "streams %-11s open %d  rss %s  peak %s  completed %d failed %d %s\n", t.name, hs.open,
			mib(hs.rss), mib(hs.hwm), hs.ok, hs.failed, hs.firstErr)
		// Let the proxy drop the streams' connections before the next one.
		t.client.CloseIdleConnections()
		time.Sleep(time.Second)
	}
	return nil
}
