package proxy_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/proxy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// principalLevels adds two principal levels to the bench policy's service:
// the end user from metadata.user_id and a session from a header.
const principalLevels = `    principals:
      - from: metadata.user_id
        budgets: [{period: daily, limit_usd: 1000000}, {period: monthly, limit_usd: 1000000}]
      - from: header:x-session-id
        budgets: [{period: total, limit_usd: 1000000}]
`

// BenchmarkProxyPrincipals is BenchmarkProxyJSON with two principal levels:
// requests name one of 1,000 end users and 4,000 sessions. Against
// BenchmarkProxyJSON/bare it shows what caps per caller cost the gateway
// (cpu-ns/op); with grants, principal holds take the per-request path.
//
//	go test -run '^$' -bench 'ProxyJSON|ProxyPrincipals' ./internal/proxy/
func BenchmarkProxyPrincipals(b *testing.B) {
	up := recordUpstream(b, false)
	plain := messagesBody(false)
	bodies := make([][]byte, 1000)
	for i := range bodies {
		bodies[i] = bytes.Replace(plain, []byte(`{`), []byte(fmt.Sprintf(`{"metadata":{"user_id":"user-%06d"},`, i)), 1)
	}
	for _, kind := range []string{"nop", "bolt", "redis", "grants"} {
		b.Run(kind, func(b *testing.B) {
			h := newPrincipalGateway(b, up, openStore(b, kind))
			var seq atomic.Int64
			serve := func(w *discardWriter) {
				i := seq.Add(1)
				r := httptest.NewRequest(http.MethodPost, "http://gateway.invalid/v1/messages", bytes.NewReader(bodies[i%int64(len(bodies))]))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Anthropic-Version", "2023-06-01")
				r.Header.Set("X-Api-Key", testutil.CanaryToken)
				r.Header.Set("X-Session-Id", fmt.Sprintf("session-%06d", i%4000))
				clear(w.h)
				w.code, w.n = 0, 0
				h.ServeHTTP(w, r)
			}
			w := &discardWriter{h: http.Header{}}
			serve(w)
			h.Wait()
			if w.code != http.StatusOK {
				b.Fatalf("first request: status %d", w.code)
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
			h.Wait()
			b.StopTimer()
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d requests did not get 200", n)
			}
		})
	}
}

func newPrincipalGateway(b *testing.B, up http.RoundTripper, st proxy.Budgeter) *proxy.Handler {
	return newGatewayPolicy(b, up, st, benchPolicy+principalLevels)
}
