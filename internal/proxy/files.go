package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// FileOwners remembers which service uploaded each file (package owner).
type FileOwners interface {
	Record(ctx context.Context, id, service string) error
	Owner(ctx context.Context, id string) (service string, ok bool, err error)
	Forget(ctx context.Context, id string) error
}

// maxFileObject bounds a file object read to record its owner.
const maxFileObject = 1 << 20

// admitFiles keeps a service to the files it uploaded through the gateway:
// reading, downloading or deleting another service's file answers 404, as
// if it did not exist.
func (h *Handler) admitFiles(r *http.Request, c *call) error {
	rest := strings.TrimPrefix(r.URL.Path, "/v1/files")
	if rest == "" {
		if r.Method == http.MethodPost || r.Method == http.MethodGet {
			return nil // upload (owner recorded from the answer) or list (filtered)
		}
		return errPathRefused("method " + r.Method + " is not allowed on /v1/files")
	}
	return checkOwner(r.Context(), h.o.Files.Owner, rest, c.svc.Name, "file")
}

// checkOwner refuses a request for an object (the first segment of rest,
// "/<id>/...") that svc did not create, as not found: the object's
// existence is another service's business.
func checkOwner(ctx context.Context, owner func(context.Context, string) (string, bool, error), rest, svc, kind string) error {
	id, _, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	o, ok, err := owner(ctx, id)
	if err != nil {
		return fmt.Errorf("proxy: %s owner: %w", kind, err)
	}
	if !ok || o != svc {
		return errNotOwned(kind)
	}
	return nil
}

// filesResponse records the owner of an uploaded file before its id
// reaches the client, filters listings to the caller's files, and forgets
// a deleted file's owner.
func (h *Handler) filesResponse(resp *http.Response, c *call) error {
	req := resp.Request
	path := h.clientPath(req)
	done := func(error) { h.finish(c, outcomeUnsettled{}) }
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	switch {
	case !ok:
	case path == "/v1/files" && req.Method == http.MethodPost:
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxFileObject))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("proxy: read file object: %w", err)
		}
		var obj struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil || obj.ID == "" {
			return fmt.Errorf("proxy: uploaded file object has no id: %w", err)
		}
		if err := h.o.Files.Record(req.Context(), obj.ID, c.svc.Name); err != nil {
			// An upload nobody owns could never be used or deleted through
			// the gateway: the client is told it failed.
			h.log.Error("uploaded file's owner not recorded", append(c.logFields(), zap.String("file_id", obj.ID), zap.Error(err))...)
			return errOwnerNotRecorded(err)
		}
		setBody(resp, raw, done)
		return nil
	case path == "/v1/files" && req.Method == http.MethodGet:
		out, err := h.ownedList(resp, func(ctx context.Context, id string) (bool, error) {
			o, ok, err := h.o.Files.Owner(ctx, id)
			return ok && o == c.svc.Name, err
		})
		if err != nil {
			return err
		}
		setBody(resp, out, done)
		return nil
	case req.Method == http.MethodDelete:
		id := strings.TrimPrefix(path, "/v1/files/")
		if err := h.o.Files.Forget(req.Context(), id); err != nil {
			h.log.Warn("deleted file's owner record kept", append(c.logFields(), zap.String("file_id", id), zap.Error(err))...)
		}
	}
	resp.Body = &tailBody{ReadCloser: resp.Body, done: done}
	return nil
}

// setBody replaces a response body the gateway rewrote.
func setBody(resp *http.Response, b []byte, done func(error)) {
	resp.Body = &tailBody{ReadCloser: io.NopCloser(bytes.NewReader(b)), done: done}
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	resp.Header.Del("Content-Encoding")
}

// clientPath is the path the client asked for, given the outbound request:
// the upstream URL's own path prefix (CLADE_UPSTREAM_URL may have one) is
// removed.
func (h *Handler) clientPath(out *http.Request) string {
	return strings.TrimPrefix(out.URL.Path, strings.TrimSuffix(h.o.Upstream.Path, "/"))
}
