// Command bare-proxy is the bench's baseline: an httputil.ReverseProxy that
// sets the upstream x-api-key and does nothing else. What the gateway costs
// is measured as a ratio to what this costs in the same run.
//
// It reads the request body before forwarding it, as the gateway does.
// Forwarding the client's body stream races in net/http when the upstream
// answers at once: the server discards and closes a request body it thinks
// unread when the response headers go out (server.go, chunkWriter.
// writeHeader), the transport's last read of that body then fails, and the
// transport closes the upstream connection mid-response ("use of closed
// network connection", the client sees unexpected EOF). With a 0 ms upstream
// that hit about 1 in 1,000 SSE requests.
//
// It pools upstream connections as the gateway does (a bare proxy with the
// default two idle connections per host would be measuring connection
// setup, not proxying), and serves the same Go runtime metrics as the
// gateway's admin listener (/metrics on -admin-listen) so the bench reads
// allocations from both the same way.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bare-proxy:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "proxy listen address (loopback only)")
	adminListen := flag.String("admin-listen", "127.0.0.1:0", "metrics listen address (loopback only)")
	upstream := flag.String("upstream", "", "upstream base URL (loopback only)")
	pprofListen := flag.String("pprof-listen", "", "serve Go profiles and scheduler counters here (loopback only; the bench's -profile)")
	keyEnv := flag.String("key-env", "BENCH_WORKSPACE_KEY", "environment variable holding the upstream x-api-key")
	flag.Parse()
	up, err := url.Parse(*upstream)
	if err != nil || up.Scheme != "http" {
		return fmt.Errorf("-upstream must be an http URL, got %q", *upstream)
	}
	for _, a := range []string{*listen, *adminListen, up.Host} {
		if err := loopbackOnly(a); err != nil {
			return err
		}
	}
	key := os.Getenv(*keyEnv)
	if key == "" {
		return fmt.Errorf("%s is empty", *keyEnv)
	}

	// The gateway's clade_gateway_overhead_seconds, measured the same way
	// (handler start to forwarding), so the bench can tell a tail inside
	// the gateway from one every process on the machine sees.
	overhead := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "clade_gateway_overhead_seconds",
		Help:    "Bench baseline: time from the handler's start to forwarding, as the gateway measures it.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5},
	})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.IdleConnTimeout = 1024, 1024, 90*time.Second
	rp := &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.Out.Host = up.Host
			pr.Out.Header.Set("X-Api-Key", key)
			if start, ok := pr.In.Context().Value(startKey{}).(time.Time); ok {
				overhead.Observe(time.Since(start).Seconds())
			}
		},
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), overhead)
	buffered := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), startKey{}, time.Now()))
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "cannot read the request body", http.StatusBadRequest)
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		rp.ServeHTTP(w, r)
	})
	api := &http.Server{Handler: buffered, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	adm := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
	apiLn, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	admLn, err := net.Listen("tcp", *adminListen)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s admin %s\n", apiLn.Addr(), admLn.Addr())
	if *pprofListen != "" {
		if err := serveProfiles(*pprofListen); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- api.Serve(apiLn) }()
	go func() { errc <- adm.Serve(admLn) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	_ = api.Close()
	_ = adm.Close()
	return nil
}

// startKey carries a request's arrival time in the handler to Rewrite.
type startKey struct{}

func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if ip == nil || !ip.IsLoopback() {
		return errors.New("address " + addr + " is not a loopback IP")
	}
	return nil
}
