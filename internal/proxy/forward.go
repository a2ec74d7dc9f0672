package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/meter"
)

// rewrite builds the upstream request. ReverseProxy has already removed
// hop-by-hop headers (including any named in Connection) and the client's
// X-Forwarded-* before calling it, so the key set here cannot be stripped
// by a header trick.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	c := callFrom(pr.In.Context())
	pr.SetURL(h.o.Upstream)
	pr.Out.Host = h.o.Upstream.Host
	out := pr.Out.Header
	// Credentials, workspace and organisation selectors and forwarding
	// claims, under any spelling: the workspace is the key's, and the
	// upstream sees only the gateway's key.
	stripClientHeaders(out)
	// The body was read in full at admission, so the client's trailers
	// have arrived and were copied with the request: none is forwarded,
	// or a credential could ride in after the headers were checked.
	pr.Out.Trailer = nil
	// The meter reads usage from the bytes as they pass, so the upstream
	// must not compress them for the client. Without the client's
	// Accept-Encoding the transport asks for gzip itself and decompresses
	// transparently; the client receives identity bytes.
	out.Del("Accept-Encoding")
	out.Set("X-Api-Key", c.key)
	if c.body != nil {
		pr.Out.Body = io.NopCloser(bytes.NewReader(c.body))
		pr.Out.ContentLength = int64(len(c.body))
		pr.Out.Header.Set("Content-Length", strconv.Itoa(len(c.body)))
		body := c.body
		pr.Out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	c.inHost, c.inTLS = pr.In.Host, pr.In.TLS != nil
	c.forwarded = h.o.Clock()
	c.overheadPre = c.forwarded.Sub(c.start)
}

// modifyResponse runs when the upstream's headers arrive: it installs the
// metering body for responses that spend, and points batch objects back at
// the gateway.
func (h *Handler) modifyResponse(resp *http.Response) error {
	c := callFrom(resp.Request.Context())
	c.headersAt = h.o.Clock()
	c.status = resp.StatusCode
	c.upstreamID = resp.Header.Get("Request-Id")
	resp.Header.Set("clade-request-id", c.id)
	if c.fitted > 0 {
		resp.Header.Set("clade-max-tokens-fitted", strconv.FormatInt(c.fitted, 10))
	}
	h.m.ttfb.WithLabelValues(c.modelLabel, routeName(c.route)).Observe(c.headersAt.Sub(c.forwarded).Seconds())
	if c.route == routeBatches {
		return h.batchResponse(resp, c)
	}
	if c.route == routeFiles {
		return h.filesResponse(resp, c)
	}
	if !c.metered {
		resp.Body = &tailBody{ReadCloser: resp.Body, done: func(error) { h.finish(c, nil) }}
		return nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Anthropic does not bill requests it refused; the body (its error)
		// passes through unchanged for the client's retry logic.
		resp.Body = &tailBody{ReadCloser: resp.Body, done: func(error) { h.finish(c, outcomeRefused{}) }}
		return nil
	}
	if c.res.HasRemaining {
		resp.Header.Set("clade-budget-remaining-usd", c.res.Remaining.String())
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		c.stream = true
		h.m.streamsOpen.Inc()
		p := meter.NewSSEParser(meter.DefaultLimits())
		resp.Body = &tailBody{ReadCloser: resp.Body, tee: p, done: func(err error) {
			h.m.streamsOpen.Dec()
			h.finish(c, outcomeStream{res: p.Result(), valid: p.Validity(), opaque: p.Opaque(), err: err})
		}}
		return nil
	}
	x := meter.NewJSONExtractor(meter.DefaultLimits())
	resp.Body = &tailBody{ReadCloser: resp.Body, tee: x, done: func(err error) {
		if err == nil {
			// ReverseProxy leaves a body of known length in the server's
			// buffer until the handler returns: the client would wait for
			// the pricing, logging and settling below.
			_ = http.NewResponseController(c.w).Flush()
		}
		u, ok := x.Result()
		h.finish(c, outcomeJSON{usage: u, valid: x.Validity(), ok: ok, err: err})
	}}
	return nil
}

// upstreamError answers when the upstream could not be reached or failed
// before sending headers.
func (h *Handler) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	c := callFrom(r.Context())
	if errors.Is(err, http.ErrAbortHandler) {
		panic(err)
	}
	e := statusFor(err, h.o.Clock())
	c.status = e.Status
	if r.Context().Err() != nil {
		// The client went away; nobody reads an answer. 499 in logs and
		// metrics, as nginx and caddy do.
		c.status = 499
	} else {
		writeError(w, c.id, e)
	}
	h.finish(c, outcomeFailed{err: err, dial: isDialError(err)})
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// tailBody passes the upstream body through untouched, hands every byte to
// a meter as it goes, and reports once when the body is done: at Close,
// which ReverseProxy always calls, whether the copy ended at EOF, on an
// upstream error or because the client went away.
type tailBody struct {
	io.ReadCloser
	tee   io.Writer
	done  func(readErr error)
	err   error
	eof   bool
	close sync.Once
}

func (b *tailBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 && b.tee != nil {
		_, _ = b.tee.Write(p[:n]) // meters never fail a stream
	}
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil && b.err == nil:
		b.err = err
	}
	return n, err
}

func (b *tailBody) Close() error {
	err := b.ReadCloser.Close()
	b.close.Do(func() {
		readErr := b.err
		if readErr == nil && !b.eof {
			readErr = errClientGone
		}
		b.done(readErr)
	})
	return err
}

var errClientGone = errors.New("proxy: response not read to the end (client disconnected)")

// settleContext is detached from the request: a settlement must complete
// even though the client that caused it has gone.
func settleContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), settleTimeout)
}

func logReadErr(err error) zap.Field {
	if err == nil {
		return zap.Skip()
	}
	return zap.NamedError("body_error", err)
}
