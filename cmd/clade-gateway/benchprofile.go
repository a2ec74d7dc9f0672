//go:build benchprofile

package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/metrics"
)

// A build for the load benchmark (bench/cmd/clade-bench -profile) serves
// Go's profiles and scheduler counters on the loopback address in
// CLADE_BENCH_PPROF. The shipped binary has neither: no tag, no listener.
func init() {
	addr := os.Getenv("CLADE_BENCH_PPROF")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintln(os.Stderr, "clade-gateway: CLADE_BENCH_PPROF must be a loopback address:port")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clade-gateway: CLADE_BENCH_PPROF:", err)
		os.Exit(2)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/runtime", runtimeCounters)
	go func() { _ = http.Serve(ln, mux) }()
}

// runtimeCounters writes the scheduler and GC counters the bench reads
// per request: goroutines created, goroutines now, GC cycles.
func runtimeCounters(w http.ResponseWriter, _ *http.Request) {
	s := []metrics.Sample{
		{Name: "/sched/goroutines-created:goroutines"},
		{Name: "/sched/goroutines:goroutines"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}
	metrics.Read(s)
	for _, m := range s {
		fmt.Fprintf(w, "%s %d\n", m.Name, m.Value.Uint64())
	}
}
