package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/metrics"
)

// serveProfiles serves Go's profiles and the scheduler counters on addr,
// as the gateway's benchprofile build does, so both are profiled alike.
func serveProfiles(addr string) error {
	if err := loopbackOnly(addr); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/runtime", func(w http.ResponseWriter, _ *http.Request) {
		s := []metrics.Sample{
			{Name: "/sched/goroutines-created:goroutines"},
			{Name: "/sched/goroutines:goroutines"},
			{Name: "/gc/cycles/total:gc-cycles"},
		}
		metrics.Read(s)
		for _, m := range s {
			fmt.Fprintf(w, "%s %d\n", m.Name, m.Value.Uint64())
		}
	})
	go func() { _ = http.Serve(ln, mux) }()
	return nil
}
