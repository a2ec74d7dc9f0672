package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"time"
)

// snapshot is a target's counters at one instant.
type snapshot struct {
	cpu      time.Duration
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
	}
	return s, nil
}

func (e *env) snapAfter(t *target) (snapshot, error) {
	var s snapshot
	var err error
	if t.proc != nil {
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

// phases: "max" is closed-loop at fixed concurrency (throughput, CPU per
// request); "lat" is open-loop at a fixed rate with a slow upstream
// (latency).
var phases = []string{"max", "lat"}
var modes = []string{"json", "sse"}

func (e *env) shape(phase, mode string) shape {
	sh := shape{stream: mode == "sse", spacing: e.o.spacing, deltas: e.o.deltas}
	if phase == "lat" {
		sh.ttfb, sh.spacing = e.o.ttfb, e.o.latSpacing
	}
	return sh
}

func (e *env) load(t *target, phase, mode string, d time.Duration) segment {
	r := newRequester(t, e.shape(phase, mode))
	var seg segment
	if phase == "max" {
		conc := e.o.concJSON
		if mode == "sse" {
			conc = e.o.concSSE
		}
		seg = closedLoop(r, conc, d)
	} else {
		seg = openLoop(r, e.o.rate, d)
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
			if seg := e.load(t, "max", m, time.Second); seg.failed > 0 {
				return fmt.Errorf("%s %s warm-up: %d failed: %s", t.name, m, seg.failed, seg.firstErr)
			}
		}
	}
	n := len(e.targets)
	for round := range e.o.rounds {
		order := roundOrder(n, round)
		for _, phase := range phases {
			for _, mode := range modes {
				for _, i := range order {
					t := e.targets[i]
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
					r.add(phase, mode, t.name, seg, before, after)
					// Per-round p99 shows whether a gap in the pooled p99 is
					// every round's or one bad moment's.
					fmt.Fprintf(os.Stderr, "round %d %-3s %-4s %-11s %7.0f req/s  p50 %6.2fms  p99 %6.2fms  failed %d\n", round+1, phase, mode, t.name,
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
				seg = openLoop(newRequester(t, e.shape("lat", mode)), 200, time.Second)
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
