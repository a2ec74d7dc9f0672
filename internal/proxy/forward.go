package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
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
