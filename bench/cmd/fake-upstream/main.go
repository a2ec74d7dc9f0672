// Command fake-upstream serves internal/fakeupstream as its own process for
// the bench, so that its CPU is not the gateway's, and counts the TCP
// connections clients open to it: a proxy that reuses its upstream
// connections opens none per request once warm.
//
// Responses are realistic in size: a Messages response carries -deltas text
// deltas (about 30 bytes each) and the usage the pricing note uses (1200
// input, 300 output tokens). A request may override the timing with the
// headers X-Bench-Ttfb and X-Bench-Spacing (Go durations) and the size with
// X-Bench-Deltas; proxies forward them untouched.
//
// Counters are served as JSON on a separate listener (-stats-listen, GET
// /stats) so that reading them opens no connection on the counted one.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
)

// words is the prose the deltas are cut from.
const words = "The gateway meters every response as it streams, prices the usage exactly, " +
	"and settles the hold against each budget that applies to the service. "

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fake-upstream:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "API listen address (loopback only)")
	statsListen := flag.String("stats-listen", "127.0.0.1:0", "counters listen address (loopback only)")
	keyEnv := flag.String("key-env", "BENCH_WORKSPACE_KEY", "environment variable holding the accepted x-api-key")
	ttfb := flag.Duration("ttfb", 0, "default time before response headers")
	spacing := flag.Duration("event-spacing", 0, "default time between SSE events")
	deltas := flag.Int("deltas", 40, "default number of text deltas (content size)")
	flag.Parse()
	for _, a := range []string{*listen, *statsListen} {
		if err := loopbackOnly(a); err != nil {
			return err
		}
	}
	key := os.Getenv(*keyEnv)
	if key == "" {
		return fmt.Errorf("%s is empty", *keyEnv)
	}

	f := fakeupstream.New(key)
	def := behavior{ttfb: *ttfb, spacing: *spacing, deltas: *deltas}
	f.Behave = func(r *http.Request, _ string, _ bool) fakeupstream.Behavior { return def.from(r.Header).build() }

	var opened, open atomic.Int64
	api := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				opened.Add(1)
				open.Add(1)
			case http.StateClosed, http.StateHijacked:
				open.Add(-1)
			}
		}}
	stats := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int64{
			"conns_opened": opened.Load(), "conns_open": open.Load(), "messages": f.Messages(),
		})
	})}
	apiLn, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	statsLn, err := net.Listen("tcp", *statsListen)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s stats %s\n", apiLn.Addr(), statsLn.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// The fake records every request for tests; the bench never reads them.
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f.ForgetRequests()
			}
		}
	}()
	errc := make(chan error, 2)
	go func() { errc <- api.Serve(apiLn) }()
	go func() { errc <- stats.Serve(statsLn) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	_ = api.Close()
	_ = stats.Close()
	return nil
}

type behavior struct {
	ttfb, spacing time.Duration
	deltas        int
}

// from applies a request's X-Bench-* overrides; malformed ones are ignored.
func (b behavior) from(h http.Header) behavior {
	if d, err := time.ParseDuration(h.Get("X-Bench-Ttfb")); err == nil {
		b.ttfb = d
	}
	if d, err := time.ParseDuration(h.Get("X-Bench-Spacing")); err == nil {
		b.spacing = d
	}
	if n, err := strconv.Atoi(h.Get("X-Bench-Deltas")); err == nil && n > 0 && n <= 10000 {
		b.deltas = n
	}
	return b
}

func (b behavior) build() fakeupstream.Behavior {
	text := make([]string, b.deltas)
	for i := range text {
		off := (i * 30) % (len(words) - 30)
		text[i] = words[off : off+30]
	}
	return fakeupstream.Behavior{
		Usage: fakeupstream.Usage{InputTokens: 1200, OutputTokens: 300},
		Text:  text, TTFB: b.ttfb, EventSpacing: b.spacing,
	}
}

func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if ip == nil || !ip.IsLoopback() {
		return errors.New("listen address " + addr + " is not a loopback IP")
	}
	return nil
}
