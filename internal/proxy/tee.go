package proxy

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/clade-gateway/clade-gateway/internal/meter"
)

// modifyResponse runs when the upstream's headers arrive: it installs the
// metering body for responses that spend, and points batch objects back at
// the gateway. It returns an error only before it wraps the body: the
// error goes to upstreamError, which finishes the call itself.
func (h *Handler) modifyResponse(resp *http.Response) error {
	c := callFrom(resp.Request.Context())
	c.headersAt = h.o.Clock()
	c.status = resp.StatusCode
	c.upstreamID = resp.Header.Get("Request-Id")
	resp.Header.Set("clade-request-id", c.id)
	if c.fitted > 0 {
		resp.Header.Set("clade-max-tokens-fitted", strconv.FormatInt(c.fitted, 10))
	}
	h.m.forRoute(c.modelLabel, c.route).ttfb.Observe(c.headersAt.Sub(c.forwarded).Seconds())
	if c.route == routeBatches {
		return h.batchResponse(resp, c)
	}
	if c.route == routeFiles {
		return h.filesResponse(resp, c)
	}
	if !c.metered {
		resp.Body = &tailBody{ReadCloser: resp.Body, done: func(error) { h.finish(c, outcomeUnsettled{}) }}
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
		if err == nil && c.res.InMemory() {
			// ReverseProxy leaves a body of known length in the server's
			// buffer until the handler returns: the client would wait for
			// the pricing, logging and settling below. Only for a draw on
			// a grant: a hold in the store (a principal's budget, near a
			// cap) is released before the answer ends, so a client's next
			// request sees the room this one left.
			_ = http.NewResponseController(c.w).Flush()
		}
		u, ok := x.Result()
		h.finish(c, outcomeJSON{usage: u, valid: x.Validity(), ok: ok, err: err})
	}}
	return nil
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
