package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/batch"
	"github.com/clade-gateway/clade-gateway/internal/money"
)

// BatchTracker remembers which service owns each batch (package batch).
type BatchTracker interface {
	Track(ctx context.Context, r batch.Record) error
	Owner(ctx context.Context, batchID string) (service string, ok bool, err error)
}

// maxBatchObject bounds a batch object or list response read for rewriting.
const maxBatchObject = 16 << 20

// admitBatch admits batch creation against the budgets (an estimate of
// every request at batch prices, held until the results are metered) and
// keeps services to their own batches.
func (h *Handler) admitBatch(r *http.Request, c *call) error {
	rest := strings.TrimPrefix(r.URL.Path, "/v1/messages/batches")
	if rest == "" {
		switch r.Method {
		case http.MethodPost:
			return h.admitBatchCreate(r, c)
		case http.MethodGet:
			return nil // list
		}
		return errPathRefused("method " + r.Method + " is not allowed on /v1/messages/batches")
	}
	return checkOwner(r.Context(), h.o.Batches.Owner, rest, c.svc.Name, "batch")
}

func (h *Handler) admitBatchCreate(r *http.Request, c *call) error {
	// The outer body must mean the same to every parser too: its requests
	// are what is priced.
	if err := checkBatchBody(c.body); err != nil {
		return err
	}
	var total money.Nanos
	n, err := eachBatchRequest(c.body, func(i int, params []byte) error {
		p, err := parseMessages(params)
		if err != nil {
			var ae *apiError
			if errors.As(err, &ae) {
				ae.Msg = fmt.Sprintf("requests[%d].params: %s", i, ae.Msg)
			}
			return err
		}
		if !modelAllowed(c.svc, p.Model) {
			return errModelNotAllowed(c.svc.Name, p.Model, c.svc.Models)
		}
		if err := checkBounds(c.state, c.svc, p.Bounds); err != nil {
			return err
		}
		e, model, err := estimateAll(c.state, p, int64(len(params)), true, c.start)
		if err != nil {
			return errUnknownModel(model, err)
		}
		total += e
		if c.model == "" {
			c.model, c.modelLabel = p.Model, c.state.modelLabel(p.Model)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return errBadRequest("requests: at least one request is required", nil)
	}
	c.batchCreate = true
	return h.reserve(r.Context(), c, total, h.o.BatchHoldTTL)
}

// batchResponse rewrites results_url in batch objects so that SDKs that
// follow it (TypeScript, Python) fetch results through the gateway, and
// records who owns a newly created batch.
func (h *Handler) batchResponse(resp *http.Response, c *call) error {
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	if c.batchCreate && !ok {
		resp.Body = &tailBody{ReadCloser: resp.Body, done: func(error) { h.finish(c, outcomeRefused{}) }}
		return nil
	}
	if !ok || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		resp.Body = &tailBody{ReadCloser: resp.Body, done: func(error) { h.finish(c, outcomeUnsettled{}) }}
		return nil
	}
	var raw []byte
	var err error
	if resp.Request.Method == http.MethodGet && h.clientPath(resp.Request) == "/v1/messages/batches" {
		// A listing shows the caller's batches only.
		raw, err = h.ownedList(resp, func(ctx context.Context, id string) (bool, error) {
			o, ok, err := h.o.Batches.Owner(ctx, id)
			return ok && o == c.svc.Name, err
		})
	} else {
		raw, err = io.ReadAll(io.LimitReader(resp.Body, maxBatchObject))
		resp.Body.Close()
	}
	if err != nil {
		return fmt.Errorf("proxy: read batch response: %w", err)
	}
	out, id, err := rewriteResultsURL(raw, h.publicBase(c))
	if err != nil {
		h.log.Warn("batch response not rewritten", append(c.logFields(), zap.Error(err))...)
		out = raw
	}
	if c.batchCreate {
		rec := batch.Record{ID: id, Service: c.svc.Name, Workspace: c.svc.Workspace.Name, Key: c.svc.Workspace.Keys[0].Name,
			AdmittedAt: c.at, Hold: c.res}
		if id == "" {
			err = errors.New("batch object has no id")
		} else {
			err = h.o.Batches.Track(resp.Request.Context(), rec)
		}
		if err != nil {
			// The hold stays and expires into an orphan charge at its
			// estimate: conservative, never unmetered.
			h.log.Error("batch not tracked; its hold will be charged at the estimate",
				append(c.logFields(), zap.Error(err))...)
		}
	}
	resp.Body = &tailBody{ReadCloser: io.NopCloser(bytes.NewReader(out)), done: func(error) { h.finish(c, outcomeUnsettled{}) }}
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	resp.Header.Del("Content-Encoding")
	return nil
}

// publicBase is where results_url should point: CLADE_PUBLIC_URL, or else
// the Host the client reached the gateway on (the README's documented
// default). The response's own Request is the outbound one, whose Host is
// the upstream's, so the client's Host is taken at rewrite time.
func (h *Handler) publicBase(c *call) string {
	if h.o.PublicURL != nil {
		return strings.TrimSuffix(h.o.PublicURL.String(), "/")
	}
	if c.inHost == "" || c.inHost == h.o.Upstream.Host {
		return ""
	}
	scheme := "http"
	if c.inTLS {
		scheme = "https"
	}
	return scheme + "://" + c.inHost
}

// rewriteResultsURL points every results_url in a batch object or list at
// base, keeping the path. It returns the object's id (for a single batch).
func rewriteResultsURL(raw []byte, base string) ([]byte, string, error) {
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, "", err
	}
	fix := func(o map[string]any) {
		u, ok := o["results_url"].(string)
		if !ok || base == "" {
			return
		}
		if i := strings.Index(u, "/v1/messages/batches/"); i >= 0 {
			o["results_url"] = base + u[i:]
		}
	}
	fix(v)
	if data, ok := v["data"].([]any); ok {
		for _, d := range data {
			if o, ok := d.(map[string]any); ok {
				fix(o)
			}
		}
	}
	id, _ := v["id"].(string)
	out, err := json.Marshal(v)
	return out, id, err
}
