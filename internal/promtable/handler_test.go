package promtable

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// scrapeWith sends a scrape with the given headers to h and returns the
// status, the headers that describe the body, and the body uncompressed.
func scrapeWith(t *testing.T, h http.Handler, hdr map[string]string) (int, string, string, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body io.Reader = rec.Body
	if rec.Header().Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = gz
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Content-Encoding"), string(b)
}

// TestHandlerServesAsPromhttp: whatever the scrape asks for (text with
// each escaping scheme, gzip or not, protobuf, a name filter), Handler
// answers with the same content type, encoding and series as promhttp
// does for the same registry, label values and help needing escapes
// included.
func TestHandlerServesAsPromhttp(t *testing.T) {
	reg := NewRegistry()
	tab := &collectCounting{Counters: NewCounters("b_requests_total", "Requests, with \\ and\nnewline.", []string{"service", "outcome"}, nil)}
	tab.Add(3, `svc "quoted"`, "ok")
	tab.Add(1, "svc\\back\nslash", "refused")
	tab.Add(0.1, "svc-0", "ok")
	tab.Add(1e21, "svc-1", "ok")
	reg.MustRegister(tab, NewCounters("d_empty_total", "Never added to.", []string{"a"}, nil))
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "c_seconds", Help: "Latency."}, []string{"route"})
	hist.WithLabelValues("messages").Observe(0.3)
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "a_open", Help: "Open."})
	gauge.Set(-1)
	reg.MustRegister(hist, gauge, prometheus.NewCounter(prometheus.CounterOpts{Name: "e_total", Help: "E."}))

	ours, theirs := Handler(reg), promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	for i, hdr := range []map[string]string{
		{},
		{"Accept-Encoding": "gzip"},
		{"Accept-Encoding": "gzip;q=0, identity"},
		{"Accept": "text/plain;version=0.0.4;escaping=allow-utf-8", "Accept-Encoding": "gzip"},
		{"Accept": "text/plain;version=0.0.4;escaping=underscores"},
		{"Accept": "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3"},
		{"Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"},
	} {
		code, ctype, enc, body := scrapeWith(t, ours, hdr)
		wcode, wctype, wenc, wbody := scrapeWith(t, theirs, hdr)
		if fmt.Sprint(code, ctype, enc) != fmt.Sprint(wcode, wctype, wenc) || body != wbody {
			t.Errorf("scrape %d (%v): got %d %q %q\n%s\nwant %d %q %q\n%s", i, hdr, code, ctype, enc, body, wcode, wctype, wenc, wbody)
		}
	}
	// promhttp collected the Table at each of its scrapes; the Handler
	// only for protobuf.
	tab.collects = 0
	scrapeWith(t, ours, map[string]string{"Accept-Encoding": "gzip"})
	if tab.collects != 0 {
		t.Error("a text scrape collected the Table series by series")
	}

	req := httptest.NewRequest(http.MethodGet, "/metrics?name[]=a_open", nil)
	rec := httptest.NewRecorder()
	ours.ServeHTTP(rec, req)
	if got := rec.Body.String(); got != "# HELP a_open Open.\n# TYPE a_open gauge\na_open -1\n" {
		t.Errorf("filtered by name: %q", got)
	}
}

// TestHandlerPlainGatherer: a gatherer that is not a Registry is served
// by promhttp.
func TestHandlerPlainGatherer(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "e_total", Help: "E."}))
	_, _, _, body := scrapeWith(t, Handler(reg), nil)
	if body != "# HELP e_total E.\n# TYPE e_total counter\ne_total 0\n" {
		t.Errorf("body %q", body)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"": false, "gzip": true, "GZIP": true, "deflate, gzip;q=0.5": true, "gzip;q=0": false,
		"gzip; q=0.0": false, "identity": false, "x-gzip": false, "br, gzip ; q=1": true,
	} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", h, got, want)
		}
	}
}

// collectCounting is a Table that counts the scrapes that collect it.
type collectCounting struct {
	*Counters
	collects int
}

func (c *collectCounting) Collect(ch chan<- prometheus.Metric) {
	c.collects++
	c.Counters.Collect(ch)
}
