package proxy_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/grant"
	"github.com/clade-gateway/clade-gateway/internal/budget/journal"
	"github.com/clade-gateway/clade-gateway/internal/budget/redisstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
	"github.com/clade-gateway/clade-gateway/internal/proxy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// The end-to-end benchmarks run one request at a time through the whole
// Handler (auth, parse, reserve, forward, meter, price, log, settle) with
// an in-memory upstream that replays what the fake upstream sends, so the
// profile holds the gateway's work and nothing else. BenchmarkProxy*/bare
// is httputil.ReverseProxy with the same upstream: the gateway's cost is
// the difference. Profiles: go test -run '^$' -bench ProxyJSON/gateway/nop
// -cpuprofile cpu.out -memprofile mem.out ./internal/proxy/

func BenchmarkProxyJSON(b *testing.B) { benchProxy(b, false) }

func BenchmarkProxySSE(b *testing.B) { benchProxy(b, true) }

func benchProxy(b *testing.B, stream bool) {
	up := recordUpstream(b, stream)
	body := messagesBody(stream)
	b.Run("bare", func(b *testing.B) {
		u, _ := url.Parse("http://upstream.invalid")
		rp := &httputil.ReverseProxy{Transport: up, Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Header.Set("X-Api-Key", testutil.CanaryKey)
		}}
		run(b, rp, body, func() {})
	})
	for _, kind := range []string{"nop", "bolt", "bolt-grants", "redis", "grants"} {
		b.Run("gateway/"+kind, func(b *testing.B) {
			h := newGateway(b, up, openStore(b, kind))
			run(b, h, body, h.Wait)
		})
	}
}

// run serves b.N requests from concurrent clients, as a loaded gateway
// does, and reports the process CPU per request (cpu-ns/op: the figure the
// bench's targets are about) next to the wall time. wait returns once
// every settlement is done, so settlements are part of the cost.
func run(b *testing.B, h http.Handler, body []byte, wait func()) {
	serve := func(w *discardWriter) {
		r := httptest.NewRequest(http.MethodPost, "http://gateway.invalid/v1/messages", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Anthropic-Version", "2023-06-01")
		r.Header.Set("X-Api-Key", testutil.CanaryToken)
		clear(w.h)
		w.code, w.n = 0, 0
		h.ServeHTTP(w, r)
	}
	w := &discardWriter{h: http.Header{}}
	serve(w)
	wait()
	if w.code != http.StatusOK || w.n == 0 {
		b.Fatalf("first request: status %d, %d bytes", w.code, w.n)
	}
	var failed atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			serve(w)
			if w.code != http.StatusOK {
				failed.Add(1)
			}
		}
	})
	wait()
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests did not get 200", n)
	}
}

// cpuTime is the CPU this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// discardWriter is a ResponseWriter that keeps only the status and the
// byte count. It flushes, as a client connection does.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}
func (w *discardWriter) Flush() {}

// replay is an in-memory upstream: it answers every request with one
// recorded response, handing it out one SSE event (or the whole JSON body)
// per Read, as the network does when events are spaced.
type replay struct {
	header http.Header
	chunks [][]byte
}

func (t *replay) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: t.header.Clone(), Body: &chunkReader{chunks: t.chunks}, ContentLength: -1, Request: r}, nil
}

type chunkReader struct {
	chunks [][]byte
	i, off int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.i == len(c.chunks) {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[c.i][c.off:])
	c.off += n
	if c.off == len(c.chunks[c.i]) {
		c.i, c.off = c.i+1, 0
	}
	return n, nil
}

func (c *chunkReader) Close() error { return nil }

// recordUpstream captures one response of the fake upstream, with the
// bench's realistic size (40 text deltas, 1,200 input and 300 output
// tokens), to replay.
func recordUpstream(b *testing.B, stream bool) *replay {
	f := fakeupstream.New(testutil.CanaryKey)
	f.Behave = func(*http.Request, string, bool) fakeupstream.Behavior {
		text := make([]string, 40)
		for i := range text {
			text[i] = "The gateway meters every resp"
		}
		return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 1200, OutputTokens: 300}, Text: text}
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages", bytes.NewReader(messagesBody(stream)))
	req.Header.Set("X-Api-Key", testutil.CanaryKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	all, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("record: %v, status %d", err, resp.StatusCode)
	}
	h := resp.Header.Clone()
	h.Del("Content-Length")
	h.Del("Date")
	rp := &replay{header: h}
	if !stream {
		rp.chunks = [][]byte{all}
		return rp
	}
	for _, ev := range strings.SplitAfter(string(all), "\n\n") {
		if ev != "" {
			rp.chunks = append(rp.chunks, []byte(ev))
		}
	}
	return rp
}

func messagesBody(stream bool) []byte {
	s := `{"model":"claude-sonnet-4-6","max_tokens":1024,"stream":` + map[bool]string{true: "true", false: "false"}[stream] +
		`,"messages":[{"role":"user","content":"` + strings.Repeat("Summarise the following paragraph about budgets and metering. ", 75) + `"}]}`
	return []byte(s)
}

const benchPolicy = `
workspaces:
  production:
    keys:
      - {name: prod, env: BENCH_KEY, created: 2026-09-01}
    budgets:
      - {period: monthly, limit_usd: 100000000}
teams:
  search:
    budgets:
      - {period: monthly, limit_usd: 100000000}
services:
  recommendation:
    team: search
    workspace: production
    tokens:
      - sha256: %TOKEN%
    models: ["claude-sonnet-*"]
    budgets:
      - {period: daily, limit_usd: 100000000}
      - {period: monthly, limit_usd: 100000000}
`

// newGateway builds the Handler as the program does, logging at info in
// JSON (encoded, then discarded) so logging costs what it costs.
func newGateway(b *testing.B, up http.RoundTripper, st proxy.Budgeter) *proxy.Handler {
	return newGatewayPolicy(b, up, st, benchPolicy)
}

// newGatewayPolicy is newGateway with another policy (%TOKEN% is the
// canary token's digest).
func newGatewayPolicy(b *testing.B, up http.RoundTripper, st proxy.Budgeter, policyYAML string) *proxy.Handler {
	dir := b.TempDir()
	path := testutil.WritePolicy(b, dir, strings.Replace(policyYAML, "%TOKEN%", testutil.SHA256(testutil.CanaryToken), 1))
	p, err := policy.Load(path, policy.LoadOptions{ResolveSecrets: true, Now: time.Now,
		Getenv: func(k string) string { return map[string]string{"BENCH_KEY": testutil.CanaryKey}[k] }})
	if err != nil {
		b.Fatal(err)
	}
	base, err := pricing.Default()
	if err != nil {
		b.Fatal(err)
	}
	tbl, err := pricing.New(base, p.Pricing)
	if err != nil {
		b.Fatal(err)
	}
	state := proxy.NewState(p, tbl, nil)
	j, err := journal.Open(filepath.Join(dir, "journal.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = j.Close() })
	u, _ := url.Parse("http://upstream.invalid")
	h, err := proxy.New(proxy.Options{Upstream: u, State: func() *proxy.State { return state }, Budget: st, Journal: j,
		// Request lines by hand, as the gateway writes its JSON log.
		Logger: discardLogger(), RequestLog: io.Discard, SpendLog: io.Discard, Registerer: prometheus.NewRegistry(), Transport: up})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

func discardLogger() *zap.Logger {
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), zapcore.AddSync(io.Discard), zapcore.InfoLevel))
}

// openStore opens the budget store a sub-benchmark names: "nop" admits
// everything without storing anything (the proxy's own cost), "bolt" is
// the embedded store, "bolt-grants" the same with admission grants (the
// embedded store as it ships), "redis" a private redis-server, "grants" the
// same with admission grants (CLADE_GRANT_WINDOW=100ms).
func openStore(b *testing.B, kind string) proxy.Budgeter {
	dir := b.TempDir()
	opts := storeopts.Options{EpochFile: filepath.Join(dir, "epoch")}
	switch kind {
	case "bolt", "bolt-grants":
		s, err := boltstore.Open(filepath.Join(dir, "budgets.db"), opts)
		if err != nil {
			b.Fatal(err)
		}
		if kind == "bolt" {
			b.Cleanup(func() { _ = s.Close() })
			return s
		}
		g, err := grant.New(s, grant.Options{Window: 100 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = g.Close() })
		return g
	case "redis", "grants":
		addr := os.Getenv("CLADE_TEST_REDIS_ADDR")
		if addr == "" {
			if os.Getenv("CLADE_TEST_NO_REDIS") == "1" {
				b.Skip("CLADE_TEST_NO_REDIS=1")
			}
			addr = testutil.StartRedis(b).Addr()
		}
		opts.Prefix = "bench" + strings.ReplaceAll(b.Name(), "/", "-")
		s, err := redisstore.New(redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, Protocol: 2, PoolSize: 256}), opts)
		if err != nil {
			b.Fatal(err)
		}
		if kind == "redis" {
			b.Cleanup(func() { _ = s.Close() })
			return s
		}
		g, err := grant.New(s, grant.Options{Window: 100 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = g.Close() })
		return g
	}
	return nopStore{}
}

// nopStore admits every hold and forgets it.
type nopStore struct{}

func (nopStore) Reserve(_ context.Context, h budget.Hold) (budget.Reservation, error) {
	return budget.Reservation{RequestID: h.RequestID, Keys: []string{"k"}, Amount: h.Amount}, nil
}
func (nopStore) Extend(context.Context, budget.Reservation, time.Duration) error { return nil }
func (nopStore) Settle(context.Context, budget.Reservation, money.Nanos) error   { return nil }
