package proxy

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// bodyChunk is the unit the request body is read in. Chunks follow the
// bytes that actually arrive, so a client's Content-Length claim alone
// never makes the gateway allocate, and a large body is copied once, into
// a buffer of its exact size, instead of through a doubling slice whose
// old and new halves coexist at every growth.
const bodyChunk = 1 << 20

// errBodyStalled reports a body that did not arrive within the read
// deadlines.
var errBodyStalled = errors.New("proxy: request body read deadline exceeded")

// bodyLimit is the size limit of the route's bodies: the same whether the
// body is chunked or has a Content-Length.
func (h *Handler) bodyLimit(c *call) int64 {
	if c.route == routeBatches {
		return h.o.MaxBatchBodyBytes
	}
	return h.o.MaxBodyBytes
}

// readBody reads the whole request body into c.body under the route's size
// limit and the read deadlines: the whole body must arrive within
// BodyReadTimeout, with no pause longer than BodyIdleTimeout. A body that
// stalls is cut and the connection closed; no hold exists yet.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, c *call) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	limit := h.bodyLimit(c)
	if r.ContentLength > limit {
		w.Header().Set("Connection", "close") // the unread body must not be parsed as a request
		return &http.MaxBytesError{Limit: limit}
	}
	rc := http.NewResponseController(w)
	body := http.MaxBytesReader(w, r.Body, limit)
	err := readChunks(rc, body, r.ContentLength, time.Now().Add(h.o.BodyReadTimeout), h.o.BodyIdleTimeout, c)
	if errors.Is(err, errBodyStalled) {
		// The deadline stays in the past: the server, which would discard
		// the unread rest of a small body before closing, fails at once.
		w.Header().Set("Connection", "close")
		return err
	}
	// Clearing the deadline matters: the server's background read during a
	// long response would otherwise hit it and cancel the request.
	_ = rc.SetReadDeadline(time.Time{})
	return err
}

// readChunks reads body into c.body; deadline is wall-clock, as the
// network's are.
func readChunks(rc *http.ResponseController, body io.Reader, contentLength int64, deadline time.Time, idle time.Duration, c *call) error {
	var chunks [][]byte
	var total int
	first := make([]byte, 0, min(max(contentLength+1, 512), bodyChunk))
	cur := first
	for {
		if err := rc.SetReadDeadline(earliest(deadline, time.Now().Add(idle))); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return errBadRequest("could not read the request body", err)
		}
		n, err := body.Read(cur[len(cur):cap(cur)])
		cur = cur[:len(cur)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &mbe):
				return err
			case errors.Is(err, os.ErrDeadlineExceeded):
				return errBodyStalled
			}
			return errBadRequest("could not read the request body", err)
		}
		if len(cur) == cap(cur) {
			chunks = append(chunks, cur)
			total += len(cur)
			if int64(total)*2 >= contentLength && int64(total) < contentLength {
				// Half the announced body has arrived: its exact buffer
				// now costs at most twice what was received, and the rest
				// is read straight into it, never copied.
				cur = make([]byte, 0, contentLength+1)
				for i, ch := range chunks {
					cur = append(cur, ch...)
					chunks[i] = nil
				}
				chunks, total = nil, 0
				continue
			}
			cur = make([]byte, 0, bodyChunk)
		}
	}
	if chunks == nil {
		c.body = cur
		return nil
	}
	buf := make([]byte, 0, total+len(cur))
	for i, ch := range chunks {
		buf = append(buf, ch...)
		chunks[i] = nil // collectable as soon as copied
	}
	c.body = append(buf, cur...)
	return nil
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
