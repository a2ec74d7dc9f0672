package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// maxListPages bounds the upstream pages one filtered listing reads while
// it finds none of the caller's objects.
const maxListPages = 10

// listPage is a cursor-paged list as the API returns it.
type listPage struct {
	Data    []json.RawMessage `json:"data"`
	HasMore bool              `json:"has_more"`
	FirstID *string           `json:"first_id"`
	LastID  *string           `json:"last_id"`
	// NextPage is the opaque cursor of lists paged by token (Files).
	NextPage *string `json:"next_page"`
}

// ownedList filters a list answer (files, batches) to the caller's
// objects. Cursors name the caller's own first and last objects, so the
// next page continues after them upstream and no other service's id is
// shown. A page with none of the caller's objects is skipped (up to
// maxListPages), because SDKs stop paging at an empty page.
func (h *Handler) ownedList(resp *http.Response, owns func(ctx context.Context, id string) (bool, error)) ([]byte, error) {
	out := resp.Request
	ctx := out.Context()
	backward := out.URL.Query().Has("before_id")
	body := resp.Body
	for pages := 1; ; pages++ {
		raw, err := io.ReadAll(io.LimitReader(body, maxBatchObject))
		body.Close()
		if err != nil {
			return nil, fmt.Errorf("proxy: read list: %w", err)
		}
		var p listPage
		var shape map[string]json.RawMessage
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("proxy: decode list: %w", err)
		}
		_ = json.Unmarshal(raw, &shape)
		_, tokens := shape["next_page"]
		kept := make([]json.RawMessage, 0, len(p.Data))
		var ids []string
		for _, item := range p.Data {
			var obj struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(item, &obj) != nil || obj.ID == "" {
				continue
			}
			ok, err := owns(ctx, obj.ID)
			if err != nil {
				return nil, fmt.Errorf("proxy: list owner: %w", err)
			}
			if ok {
				kept, ids = append(kept, item), append(ids, obj.ID)
			}
		}
		cursor, more := p.LastID, p.HasMore
		switch {
		case tokens:
			cursor, more = p.NextPage, p.NextPage != nil && *p.NextPage != ""
		case backward:
			cursor = p.FirstID
		}
		if len(kept) > 0 || !more || pages >= maxListPages || cursor == nil {
			if tokens {
				// The opaque token continues after this upstream page.
				next := any(nil)
				if len(kept) > 0 && more {
					next = *cursor
				}
				return json.Marshal(map[string]any{"data": kept, "next_page": next})
			}
			res := map[string]any{"data": kept, "has_more": more && len(kept) > 0, "first_id": nil, "last_id": nil}
			if len(ids) > 0 {
				res["first_id"], res["last_id"] = ids[0], ids[len(ids)-1]
			}
			return json.Marshal(res)
		}
		next := out.Clone(ctx)
		q := next.URL.Query()
		switch {
		case tokens:
			q.Set("page", *cursor)
		case backward:
			q.Set("before_id", *cursor)
		default:
			q.Set("after_id", *cursor)
		}
		next.URL.RawQuery = q.Encode()
		next.Body, next.ContentLength, next.GetBody = nil, 0, nil
		r, err := h.o.Transport.RoundTrip(next)
		if err != nil {
			return nil, fmt.Errorf("proxy: list next page: %w", err)
		}
		if r.StatusCode != http.StatusOK {
			r.Body.Close()
			return nil, fmt.Errorf("proxy: list next page: upstream status %d", r.StatusCode)
		}
		body = r.Body
	}
}
