package fakeupstream

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

type fakeFile struct {
	id, name, mime string
	data           []byte
	created        time.Time
	seq            int
}

// serveFiles is the Files API (beta): multipart upload, list (newest
// first, paged by opaque next_page tokens), metadata, content download and
// delete.
func (s *Server) serveFiles(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/v1/files")
	switch {
	case rest == "" && r.Method == http.MethodPost:
		if err := r.ParseMultipartForm(64 << 20); err != nil {
			writeErr(w, http.StatusBadRequest, "invalid_request_error", "multipart form with a file part required")
			return
		}
		f, hdr, err := r.FormFile("file")
		if err != nil {
			writeErr(w, http.StatusBadRequest, "invalid_request_error", "file: field required")
			return
		}
		data, _ := io.ReadAll(f)
		f.Close()
		s.mu.Lock()
		s.fileSeq++
		ff := &fakeFile{id: fmt.Sprintf("file_fake%04d", s.fileSeq), name: hdr.Filename, mime: hdr.Header.Get("Content-Type"),
			data: data, created: time.Now(), seq: s.fileSeq}
		s.files[ff.id] = ff
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, fileObject(ff))
		return
	case rest == "" && r.Method == http.MethodGet:
		s.mu.Lock()
		items := make([]pageItem, 0, len(s.files))
		for _, f := range s.files {
			items = append(items, pageItem{id: f.id, seq: f.seq, v: fileObject(f)})
		}
		s.mu.Unlock()
		writeOpaquePage(w, r, items)
		return
	}
	id, tail, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	s.mu.Lock()
	f, ok := s.files[id]
	if ok && tail == "" && r.Method == http.MethodDelete {
		delete(s.files, id)
	}
	s.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusNotFound, "not_found_error", "File not found: "+id)
		return
	}
	switch {
	case tail == "" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, fileObject(f))
	case tail == "" && r.Method == http.MethodDelete:
		writeJSON(w, http.StatusOK, map[string]any{"id": f.id, "type": "file_deleted"})
	case tail == "content" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", f.mime)
		w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
		_, _ = w.Write(f.data)
	default:
		writeErr(w, http.StatusNotFound, "not_found_error", "Not found")
	}
}

func fileObject(f *fakeFile) map[string]any {
	return map[string]any{"id": f.id, "type": "file", "filename": f.name, "mime_type": f.mime,
		"size_bytes": len(f.data), "created_at": f.created.UTC().Format(time.RFC3339Nano), "downloadable": false}
}

// pageItem is one object of a cursor-paged list.
type pageItem struct {
	id  string
	seq int // creation order
	v   any
}

// writePage answers a list request as the API does: newest first, limit
// (default 20, at most 1000), after_id / before_id cursors, first_id,
// last_id and has_more.
func writePage(w http.ResponseWriter, r *http.Request, items []pageItem) {
	q := r.URL.Query()
	limit := 20
	if v, err := strconv.Atoi(q.Get("limit")); err == nil && v >= 1 && v <= 1000 {
		limit = v
	}
	sortNewestFirst(items)
	idx := func(id string) int {
		for i, it := range items {
			if it.id == id {
				return i
			}
		}
		return -1
	}
	var lo, hi int
	if a := q.Get("after_id"); a != "" {
		lo = idx(a) + 1
		hi = min(lo+limit, len(items))
	} else if b := q.Get("before_id"); b != "" {
		hi = max(idx(b), 0)
		lo = max(hi-limit, 0)
	} else {
		hi = min(limit, len(items))
	}
	page := items[lo:hi]
	data := make([]any, 0, len(page))
	for _, it := range page {
		data = append(data, it.v)
	}
	out := map[string]any{"data": data, "first_id": nil, "last_id": nil, "has_more": false}
	if len(page) > 0 {
		out["first_id"], out["last_id"] = page[0].id, page[len(page)-1].id
	}
	if q.Get("before_id") != "" {
		out["has_more"] = lo > 0
	} else {
		out["has_more"] = hi < len(items)
	}
	writeJSON(w, http.StatusOK, out)
}

// writeOpaquePage answers a list paged as the Files API pages it: limit,
// an opaque page token from the previous answer's next_page, and the ids
// filter (at most 100, a single page).
func writeOpaquePage(w http.ResponseWriter, r *http.Request, items []pageItem) {
	q := r.URL.Query()
	limit := 20
	if v, err := strconv.Atoi(q.Get("limit")); err == nil && v >= 1 && v <= 1000 {
		limit = v
	}
	sortNewestFirst(items)
	if ids := q["ids"]; len(ids) > 0 {
		want := map[string]bool{}
		for _, id := range ids {
			want[id] = true
		}
		kept := items[:0]
		for _, it := range items {
			if want[it.id] {
				kept = append(kept, it)
			}
		}
		items, limit = kept, len(kept)
	}
	lo := 0
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(p, "page_"))
		if err != nil || n < 0 || n > len(items) {
			writeErr(w, http.StatusBadRequest, "invalid_request_error", "invalid page token")
			return
		}
		lo = n
	}
	hi := min(lo+limit, len(items))
	data := make([]any, 0, hi-lo)
	for _, it := range items[lo:hi] {
		data = append(data, it.v)
	}
	var next any
	if hi < len(items) {
		next = "page_" + strconv.Itoa(hi)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "next_page": next})
}

func sortNewestFirst(items []pageItem) {
	for i := 1; i < len(items); i++ {
		for j := i; j > 0 && items[j].seq > items[j-1].seq; j-- {
			items[j], items[j-1] = items[j-1], items[j]
		}
	}
}
