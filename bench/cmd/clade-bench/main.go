// Command clade-bench measures what the gateway costs next to a bare
// httputil.ReverseProxy, on this machine, in one run.
//
// It builds clade-gateway, a fake Anthropic upstream and the bare proxy,
// starts them and a private redis-server on loopback ports, and drives four
// targets with a built-in load generator: the upstream directly, the bare
// proxy, the gateway with its embedded store and the gateway with Redis.
// Every figure comes from rounds that interleave the targets, so a noisy
// machine slows them all alike and the ratios hold. See bench/README.md for
// what each figure means.
package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

type options struct {
	rounds        int
	duration      time.Duration // per measured segment
	warmup        time.Duration // unmeasured run before each segment
	concJSON      int           // closed-loop workers, JSON
	concSSE       int           // closed-loop workers, SSE
	rate          float64       // open-loop requests per second
	ttfb          time.Duration // upstream TTFB in the latency phase
	spacing       time.Duration // upstream SSE event spacing, max phase
	latSpacing    time.Duration // upstream SSE event spacing, latency phase
	streams       int           // concurrent streams in the RSS phase
	streamSpacing time.Duration
	streamDeltas  int
	streamRamp    float64 // new streams per second while opening them
	deltas        int     // text deltas per response (both phases)
	phases        string  // comma-separated: max, lat, slow
	slowConc      int     // closed-loop concurrency of the slow phases
	slowRates     string  // comma-separated open-loop rates of the slow phases
	slowTTFB      time.Duration
	symbols       bool
	only          string // comma-separated target names; "" is all
	redisQuery    string // appended to gw-redis's CLADE_REDIS_URL
	gwEnv         string // extra KEY=VALUE,... for both gateways
	abSrc         string // another checkout whose gateway runs as gw-redis-ab
	abEnv         string // extra KEY=VALUE,... for gw-redis-ab only
	keep          bool
	out           string
	profile       string        // directory for profiles; "" takes none
	profileFor    time.Duration // CPU profile length per target and mode
	traceFor      time.Duration // execution trace length per target and mode (0: none)
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds (every target, every phase, per round)")
	flag.DurationVar(&o.duration, "duration", 2500*time.Millisecond, "measured time per target, phase and mode in a round")
	flag.DurationVar(&o.warmup, "warmup", 400*time.Millisecond, "unmeasured load before each measured segment")
	flag.IntVar(&o.concJSON, "c-json", 32, "closed-loop concurrency, JSON")
	flag.IntVar(&o.concSSE, "c-sse", 128, "closed-loop concurrency, SSE")
	flag.Float64Var(&o.rate, "rate", 1000, "open-loop rate for the latency phase (requests/s)")
	flag.DurationVar(&o.ttfb, "ttfb", 50*time.Millisecond, "upstream time to first byte in the latency phase")
	flag.DurationVar(&o.spacing, "spacing", time.Millisecond, "upstream SSE event spacing in the max phase (each event its own read and write in the proxy)")
	flag.DurationVar(&o.latSpacing, "lat-spacing", 0, "upstream SSE event spacing in the latency phase (0: back to back after TTFB; spacing timers at 1k streams/s saturate 2 cores)")
	flag.IntVar(&o.streams, "streams", 5000, "concurrent open streams in the RSS phase (0 skips it)")
	flag.DurationVar(&o.streamSpacing, "stream-spacing", 1200*time.Millisecond, "event spacing of the held streams (they last 13 spacings)")
	flag.IntVar(&o.streamDeltas, "stream-deltas", 8, "text deltas of the held streams")
	flag.Float64Var(&o.streamRamp, "stream-ramp", 500, "new streams per second while opening the held streams")
	flag.IntVar(&o.deltas, "deltas", 12, "text deltas per response: 12 is about 90 output tokens of text, 18 SSE events")
	flag.StringVar(&o.phases, "phases", "max,lat,slow", "phases to run: max (saturation), lat (open loop at -rate), slow (the shape of real model traffic: -slow-conc clients and -slow-rates with a -slow-ttfb upstream)")
	flag.IntVar(&o.slowConc, "slow-conc", 16, "closed-loop concurrency in the slow phases (0 leaves the closed loop out)")
	flag.StringVar(&o.slowRates, "slow-rates", "100,300", "open-loop rates in the slow phases, requests/s, comma-separated")
	flag.DurationVar(&o.slowTTFB, "slow-ttfb", 50*time.Millisecond, "upstream time to first byte in the slow phases")
	flag.BoolVar(&o.symbols, "symbols", false, "build with symbols (for perf); the default matches `make build` (-s -w)")
	flag.StringVar(&o.only, "targets", "", "comma-separated subset of direct,bare,gw-embedded,gw-redis,gw-grants (default all)")
	flag.StringVar(&o.redisQuery, "redis-query", "", "query appended to gw-redis's CLADE_REDIS_URL, for experiments (e.g. pool_size=256)")
	flag.StringVar(&o.gwEnv, "gw-env", "", "extra environment for both gateways, KEY=VALUE,..., for experiments (e.g. CLADE_STORE_TIMEOUT=2s)")
	flag.StringVar(&o.abSrc, "ab-src", "", "also build clade-gateway from this checkout and run it with Redis as target gw-redis-ab (before/after in one run)")
	flag.StringVar(&o.abEnv, "ab-env", "", "extra environment for gw-redis-ab only, KEY=VALUE,... (e.g. CLADE_GRANT_WINDOW=100ms to compare with gw-grants)")
	flag.StringVar(&o.profile, "profile", "", "after the rounds, profile every proxy at the highest -slow-rates with the -slow-ttfb upstream, JSON and SSE, into this directory (CPU profiles, `go tool pprof -top`, goroutines and wake-ups per request); builds the gateway with -tags benchprofile")
	flag.DurationVar(&o.profileFor, "profile-for", 10*time.Second, "CPU profile length per proxy and mode")
	flag.DurationVar(&o.traceFor, "trace-for", 0, "with -profile, also an execution trace of this length per proxy and mode, after the CPU profile (go tool trace)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs, spend logs, policy)")
	flag.StringVar(&o.out, "out", "", "also write the report to this file")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "clade-bench:", err)
		os.Exit(1)
	}
}

// target is one thing the load generator drives.
type target struct {
	name      string
	base      string // http://127.0.0.1:port
	token     string // the x-api-key clients send
	proc      *proc  // nil: the upstream itself (direct)
	metrics   string // Prometheus text endpoint, "" for direct
	pprof     string // http://127.0.0.1:port of its profiles (-profile), else ""
	redis     bool   // Redis figures belong to this target
	prefix    string // its CLADE_REDIS_PREFIX
	spendLog  string // gateway spend log file
	client    *http.Client
	completed atomic.Int64 // complete 200 responses, all phases
}

type env struct {
	o       options
	phases  []phase
	dir     string
	fake    *proc
	fakeURL string // fake stats
	rdb     *redis.Client
	targets []*target
	procs   []*proc
}

func run(o options) error {
	nofile, err := raiseFileLimit()
	if err != nil {
		return fmt.Errorf("RLIMIT_NOFILE: %w", err)
	}
	if o.streams > 0 && nofile < uint64(3*o.streams+1000) {
		return fmt.Errorf("RLIMIT_NOFILE hard limit %d is too low for %d streams (the gateway holds 2 per stream); raise it or lower -streams", nofile, o.streams)
	}
	phases, err := o.phaseList()
	if err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "clade-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "keeping", dir)
	} else {
		defer func() { _ = os.RemoveAll(dir) }() // a temporary folder
	}
	e := &env{o: o, dir: dir, phases: phases}
	defer e.stopAll()

	began := time.Now()
	fmt.Fprintln(os.Stderr, "building clade-gateway, fake-upstream, bare-proxy ...")
	bins, err := buildAll(root, dir, o.symbols, o.profile != "", o.abSrc)
	if err != nil {
		return err
	}
	if err := e.startAll(bins); err != nil {
		return err
	}
	r := newReport(o, phases)
	if err := e.measure(r); err != nil {
		return err
	}
	if o.profile != "" {
		if err := e.profileAll(); err != nil {
			return err
		}
	}
	if err := e.roundTrips(r); err != nil {
		return err
	}
	if o.streams > 0 {
		if err := e.holdPhase(r); err != nil {
			return err
		}
	}
	// Gateways first: they flush their spend logs and settle everything
	// (gw-grants returns its grants) before the logs and Redis are read.
	e.stopGateways()
	if err := r.checkSpend(e.targets, e.rdb); err != nil {
		return err
	}
	e.stopAll()
	r.elapsed = time.Since(began)
	return r.print(os.Stdout, o.out)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (e *env) stopGateways() {
	for _, p := range e.procs {
		if strings.HasPrefix(p.name, "gw-") {
			p.stop()
		}
	}
}

func (e *env) stopAll() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		e.procs[i].stop()
	}
	e.procs = nil
}

// startAll starts the fake upstream, Redis, the bare proxy and the two
// gateways, and waits until each answers.
func (e *env) startAll(bins map[string]string) error {
	key := "sk-ant-bench-" + randHex(16)
	token := "clade_sk_bench_" + randHex(16)
	keyEnv := "BENCH_WORKSPACE_KEY=" + key

	ports := make([]int, 4)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	fakeAPI := "http://" + loopback(ports[0])
	fake, err := start(e.dir, "fake-upstream", bins["fake-upstream"], []string{
		"-listen", loopback(ports[0]), "-stats-listen", loopback(ports[1])}, []string{keyEnv}, "")
	if err != nil {
		return err
	}
	e.procs = append(e.procs, fake)
	e.fake, e.fakeURL = fake, "http://"+loopback(ports[1])+"/stats"
	if err := waitHTTP(fake, e.fakeURL, 15*time.Second); err != nil {
		return err
	}

	rp, rdb, err := startRedis(e.dir)
	if err != nil {
		return err
	}
	e.procs = append(e.procs, rp)
	e.rdb = rdb

	bareArgs := []string{"-listen", loopback(ports[2]), "-admin-listen", loopback(ports[3]), "-upstream", fakeAPI}
	barePprof := ""
	if e.o.profile != "" {
		pp, err := freePort()
		if err != nil {
			return err
		}
		bareArgs = append(bareArgs, "-pprof-listen", loopback(pp))
		barePprof = "http://" + loopback(pp)
	}
	bare, err := start(e.dir, "bare-proxy", bins["bare-proxy"], bareArgs, []string{keyEnv}, "")
	if err != nil {
		return err
	}
	e.procs = append(e.procs, bare)
	if err := waitHTTP(bare, "http://"+loopback(ports[3])+"/metrics", 15*time.Second); err != nil {
		return err
	}

	policyPath := filepath.Join(e.dir, "clade.yaml")
	if err := os.WriteFile(policyPath, []byte(policyYAML(token)), 0o600); err != nil {
		return err
	}
	conc := max(e.o.concJSON, e.o.concSSE, e.o.streams) + 64
	e.targets = []*target{
		{name: "direct", base: fakeAPI, token: key},
		{name: "bare", base: "http://" + loopback(ports[2]), token: token, proc: bare,
			metrics: "http://" + loopback(ports[3]) + "/metrics", pprof: barePprof},
	}
	kinds := []string{"gw-embedded", "gw-redis", "gw-grants"}
	if e.o.abSrc != "" {
		kinds = append(kinds, "gw-redis-ab")
	}
	for _, kind := range kinds {
		if e.o.only != "" && !slices.Contains(strings.Split(e.o.only, ","), kind) {
			continue // not measured: not started either
		}
		lp, err := freePort()
		if err != nil {
			return err
		}
		ap, err := freePort()
		if err != nil {
			return err
		}
		listen, admin := loopback(lp), loopback(ap)
		data := filepath.Join(e.dir, kind)
		spend := filepath.Join(e.dir, kind+".spend.jsonl")
		env := []string{keyEnv,
			"CLADE_LISTEN=" + listen, "CLADE_ADMIN_LISTEN=" + admin, "CLADE_CONFIG=" + policyPath,
			"CLADE_UPSTREAM_URL=" + fakeAPI, "CLADE_DATA_DIR=" + data, "CLADE_SPEND_LOG=" + spend,
			"CLADE_SHUTDOWN_GRACE=5s",
		}
		if e.o.gwEnv != "" {
			env = append(env, strings.Split(e.o.gwEnv, ",")...)
		}
		t := &target{name: kind, base: "http://" + listen, token: token, metrics: "http://" + admin + "/metrics", spendLog: spend}
		if e.o.profile != "" && kind != "gw-redis-ab" {
			pp, err := freePort()
			if err != nil {
				return err
			}
			env = append(env, "CLADE_BENCH_PPROF="+loopback(pp))
			t.pprof = "http://" + loopback(pp)
		}
		bin := bins["clade-gateway"]
		if kind != "gw-embedded" {
			u := "redis://" + rdb.Options().Addr + "/0"
			if e.o.redisQuery != "" {
				u += "?" + e.o.redisQuery
			}
			// Each gateway its own keys: their holds must not meet.
			t.redis, t.prefix = true, strings.ReplaceAll(kind, "-", "")
			env = append(env, "CLADE_REDIS_URL="+u, "CLADE_REDIS_PREFIX="+t.prefix)
		}
		switch kind {
		case "gw-redis-ab":
			bin = bins["clade-gateway-ab"]
			if e.o.abEnv != "" {
				env = append(env, strings.Split(e.o.abEnv, ",")...)
			}
		case "gw-redis":
			// Per-request holds: a reserve's round trip on every request.
			// gw-grants is the gateway with Redis as it ships, with
			// admission grants (CLADE_GRANT_WINDOW unset: 100ms).
			env = append(env, "CLADE_GRANT_WINDOW=0")
		}
		p, err := start(e.dir, kind, bin, nil, env, "")
		if err != nil {
			return err
		}
		e.procs = append(e.procs, p)
		t.proc = p
		if err := waitHTTP(p, "http://"+admin+"/readyz", 20*time.Second); err != nil {
			return err
		}
		e.targets = append(e.targets, t)
	}
	for _, t := range e.targets {
		t.client = newClient(conc)
	}
	if e.o.only != "" {
		var keep []*target
		for _, t := range e.targets {
			if slices.Contains(strings.Split(e.o.only, ","), t.name) {
				keep = append(keep, t)
			}
		}
		e.targets = keep
	}
	return nil
}

// policyYAML is the gateway's policy for the bench: one service whose
// requests must fit four budgets at three levels (service daily and
// monthly, team, workspace), as a real deployment's would, with caps far
// above what the bench spends so nothing is refused.
func policyYAML(token string) string {
	sum := sha256.Sum256([]byte(token))
	return `on_store_failure: reject
workspaces:
  bench:
    keys:
      - {name: bench, env: BENCH_WORKSPACE_KEY, created: 2026-09-01}
    budgets:
      - {period: monthly, limit_usd: 100000000}
teams:
  bench:
    budgets:
      - {period: monthly, limit_usd: 100000000}
services:
  loadgen:
    team: bench
    workspace: bench
    tokens:
      - sha256: "` + hex.EncodeToString(sum[:]) + `"
    models: ["claude-sonnet-*"]
    budgets:
      - {period: daily, limit_usd: 100000000}
      - {period: monthly, limit_usd: 100000000}
`
}

func mib(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 0, 64) + " MiB" }
