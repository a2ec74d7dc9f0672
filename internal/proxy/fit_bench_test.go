package proxy_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// BenchmarkFitFastPath is the whole request far from every cap with
// fit_max_tokens off and on: fitting must cost nothing there (compare
// cpu-ns/op and allocs/op of the pairs).
func BenchmarkFitFastPath(b *testing.B) {
	up := recordUpstream(b, false)
	body := messagesBody(false)
	for _, kind := range []string{"nop", "bolt"} {
		for _, fit := range []string{"off", "on"} {
			b.Run(kind+"/fit-"+fit, func(b *testing.B) {
				pol := benchPolicy
				if fit == "on" {
					pol = "fit_max_tokens: true\n" + pol
				}
				h := newGatewayPolicy(b, up, openStore(b, kind), pol)
				run(b, h, body, h.Wait)
			})
		}
	}
}

// countingUpstream is the replayed upstream that also answers
// count_tokens, counting the calls.
type countingUpstream struct {
	*replay
	tokens int64
	calls  atomic.Int64
}

func (c *countingUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/count_tokens") {
		return c.replay.RoundTrip(r)
	}
	c.calls.Add(1)
	_, _ = io.Copy(io.Discard, r.Body)
	body := `{"input_tokens":` + itoa(c.tokens) + `}`
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

const nearCapPolicy = `fit_max_tokens: true
workspaces:
  production:
    keys:
      - {name: prod, env: BENCH_KEY, created: 2026-09-01}
teams:
  search: {}
services:
  recommendation:
    team: search
    workspace: production
    tokens:
      - sha256: %TOKEN%
    budgets:
      - {period: daily, limit_usd: 1000}
`

// BenchmarkFitNearCap serves requests (max_tokens 32,000, a ~4.6 KB
// prompt) to a budget kept at a fixed room below their worst case, on the
// embedded store, and reports per request how many were fitted and how
// many count_tokens calls were made. Near a cap every request asks once
// (but a service's first, which knows nothing of its room yet), whether
// the byte bound would have fitted it shorter or not at all.
func BenchmarkFitNearCap(b *testing.B) {
	up := recordUpstream(b, false)
	body := bytes.Replace(messagesBody(false), []byte(`"max_tokens":1024`), []byte(`"max_tokens":32000`), 1)
	promptBound := money.Nanos(len(body)+2048) * 3_000
	for _, tc := range []struct {
		name string
		room money.Nanos
	}{
		{"byte-bound-fits-shorter", promptBound + 8_000*15_000},
		{"only-count-fits", 1_500*3_000 + 1_100*15_000},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cu := &countingUpstream{replay: up, tokens: 1_200}
			st, err := boltstore.Open(filepath.Join(b.TempDir(), "b.db"), storeopts.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() })
			h := newGatewayPolicy(b, cu, st, nearCapPolicy)
			daily := budget.Budget{Scope: budget.ScopeService, Name: "recommendation", ID: "daily", Period: budget.Daily, Limit: money.USD(1000), Enforce: true}
			keep := func() {
				h.Wait()
				s, err := st.Status(context.Background(), []budget.Budget{daily})
				if err != nil {
					b.Fatal(err)
				}
				if err := st.Adjust(context.Background(), daily, s[0].Remaining()-tc.room); err != nil {
					b.Fatal(err)
				}
			}
			var fitted int
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				keep()
				b.StartTimer()
				r := httptest.NewRequest(http.MethodPost, "http://gateway.invalid/v1/messages", bytes.NewReader(body))
				r.Header.Set("X-Api-Key", testutil.CanaryToken)
				w := &discardWriter{h: http.Header{}}
				h.ServeHTTP(w, r)
				if w.code != http.StatusOK {
					b.Fatalf("status %d", w.code)
				}
				if w.h.Get("clade-max-tokens-fitted") != "" {
					fitted++
				}
			}
			b.ReportMetric(float64(fitted)/float64(b.N), "fitted/op")
			b.ReportMetric(float64(cu.calls.Load())/float64(b.N), "count_tokens/op")
		})
	}
}
