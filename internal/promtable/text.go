package promtable

import (
	"bufio"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// The text format's escapes (as expfmt writes them).
var (
	helpEscaper       = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelValueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// writeText writes f in the Prometheus text format, as
// expfmt.MetricFamilyToText writes the family f.proto() returns, from the
// label text built with the labels. buf is scratch space, returned grown.
func writeText(w *bufio.Writer, f Family, buf []byte) []byte {
	w.WriteString("# HELP ")
	w.WriteString(f.Name)
	w.WriteByte(' ')
	helpEscaper.WriteString(w, f.Help)
	w.WriteString("\n# TYPE ")
	w.WriteString(f.Name)
	if f.Type == dto.MetricType_COUNTER {
		w.WriteString(" counter\n")
	} else {
		w.WriteString(" gauge\n")
	}
	for _, s := range f.Series {
		w.WriteString(f.Name)
		w.WriteString(s.Labels.text)
		w.WriteByte(' ')
		buf = strconv.AppendFloat(buf[:0], s.Value, 'g', -1, 64)
		w.Write(buf)
		w.WriteByte('\n')
	}
	return buf
}

// Handler serves g's series on /metrics as promhttp.HandlerFor(g,
// promhttp.HandlerOpts{}) does. When g is a Registry and the scrape asks
// for the text format (Prometheus without native histograms, curl, most
// tools), it writes the Tables' families from their prepared label text
// and compresses with gzip at its fastest level: encoding tens of
// thousands of series through expfmt and gzip's default level took longer
// than everything else in a scrape. Other formats, and scrapes that filter
// by name, are served by promhttp.
func Handler(g prometheus.Gatherer) http.Handler {
	std := promhttp.HandlerFor(g, promhttp.HandlerOpts{})
	r, ok := g.(*Registry)
	if !ok {
		return std
	}
	accepted := expfmt.DefaultAcceptedFormats() // promhttp's, without OpenMetrics
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		format := expfmt.NegotiateAccept(req.Header, accepted...)
		if format.FormatType() != expfmt.TypeTextPlain || req.URL.Query().Has("name[]") {
			std.ServeHTTP(w, req)
			return
		}
		r.serveText(w, req, format)
	})
}

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

var bufWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

func (r *Registry) serveText(w http.ResponseWriter, req *http.Request, format expfmt.Format) {
	mfs, err := r.Registry.Gather()
	tables, errs := r.families()
	if err = errors.Join(append(errs, err)...); err != nil {
		// As promhttp's default (HTTPErrorOnError).
		http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Add("Vary", "Accept")
	h.Add("Vary", "Accept-Encoding")
	h.Set("Content-Type", string(format))
	var out io.Writer = w
	if acceptsGzip(req.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		gz := gzipWriters.Get().(*gzip.Writer)
		gz.Reset(w)
		defer func() { _ = gz.Close(); gzipWriters.Put(gz) }() // an error is the client gone
		out = gz
	}
	bw := bufWriters.Get().(*bufio.Writer)
	bw.Reset(out)
	defer func() { bw.Reset(nil); bufWriters.Put(bw) }()
	enc := expfmt.NewEncoder(bw, format)

	// Both lists are sorted by name and share none.
	var buf []byte
	for len(mfs) > 0 || len(tables) > 0 {
		if len(tables) == 0 || len(mfs) > 0 && mfs[0].GetName() < tables[0].Name {
			if enc.Encode(mfs[0]) != nil {
				return // the client went away
			}
			mfs = mfs[1:]
			continue
		}
		buf = writeText(bw, tables[0], buf)
		tables = tables[1:]
	}
	_ = bw.Flush() // an error is the client gone: nothing left to tell it
}

// acceptsGzip reports whether an Accept-Encoding header admits gzip.
func acceptsGzip(h string) bool {
	for part := range strings.SplitSeq(h, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
		if !ok {
			return true
		}
		v, err := strconv.ParseFloat(q, 64)
		return err == nil && v > 0
	}
	return false
}

// families gathers the Tables' non-empty families, sorted by name.
func (r *Registry) families() ([]Family, []error) {
	r.mu.Lock()
	tables := slices.Clone(r.tables)
	r.mu.Unlock()
	var out []Family
	var errs []error
	for _, t := range tables {
		fs, err := t.Families()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range fs {
			if len(f.Series) > 0 {
				out = append(out, f)
			}
		}
	}
	slices.SortFunc(out, func(a, b Family) int { return strings.Compare(a.Name, b.Name) })
	return out, errs
}
