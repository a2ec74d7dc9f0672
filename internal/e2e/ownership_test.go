package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// TestFilesAreOwnedByTheUploadingService: through the official SDK, a
// service reads, downloads, deletes and lists only the files it uploaded;
// another service's file is answered 404, as if it did not exist, and
// nothing of it reaches the upstream.
func TestFilesAreOwnedByTheUploadingService(t *testing.T) {
	f, up := startUpstream(t)
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("50"))))
	ctx := context.Background()
	rec, idx := sdk(gw, testutil.CanaryToken), sdk(gw, testutil.OtherToken)

	upload := func(c anthropic.Client, name string) string {
		t.Helper()
		fo, err := c.Beta.Files.Upload(ctx, anthropic.BetaFileUploadParams{File: anthropic.File(strings.NewReader("content of "+name), name, "text/plain")})
		if err != nil {
			t.Fatalf("upload %s: %v", name, err)
		}
		return fo.ID
	}
	// The other service's files surround the first one's, so its pages
	// hold none of them: a listing must page past them.
	var mine, theirs []string
	for i := range 3 {
		for j := range 5 {
			theirs = append(theirs, upload(idx, fmt.Sprintf("theirs-%d-%d.txt", i, j)))
		}
		mine = append(mine, upload(rec, fmt.Sprintf("mine-%d.txt", i)))
	}

	list := func(c anthropic.Client) []string {
		t.Helper()
		var ids []string
		it := c.Beta.Files.ListAutoPaging(ctx, anthropic.BetaFileListParams{Limit: anthropic.Int(2)})
		for it.Next() {
			ids = append(ids, it.Current().ID)
		}
		if err := it.Err(); err != nil {
			t.Fatalf("list: %v", err)
		}
		sort.Strings(ids)
		return ids
	}
	sorted := func(s []string) []string { s = append([]string(nil), s...); sort.Strings(s); return s }
	if got, want := list(rec), sorted(mine); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("recommendation lists %v, want its own %v", got, want)
	}
	if got, want := list(idx), sorted(theirs); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("indexer lists %v, want its own %v", got, want)
	}

	before := len(f.Requests())
	other := theirs[0]
	notFound := func(what string, err error) {
		t.Helper()
		var ae *anthropic.Error
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound {
			t.Errorf("%s of another service's file: %v, want 404", what, err)
		}
	}
	_, err := rec.Beta.Files.GetMetadata(ctx, other, anthropic.BetaFileGetMetadataParams{})
	notFound("metadata", err)
	resp, err := rec.Beta.Files.Download(ctx, other, anthropic.BetaFileDownloadParams{})
	if err == nil {
		resp.Body.Close()
	}
	notFound("download", err)
	_, err = rec.Beta.Files.Delete(ctx, other, anthropic.BetaFileDeleteParams{})
	notFound("delete", err)
	_, err = rec.Beta.Files.GetMetadata(ctx, "file_never_uploaded", anthropic.BetaFileGetMetadataParams{})
	notFound("metadata of an unknown id", err)
	if n := len(f.Requests()) - before; n != 0 {
		t.Errorf("%d requests for another service's file reached the upstream", n)
	}

	// Its own file: read, download, delete; then it is gone from its list.
	if fo, err := rec.Beta.Files.GetMetadata(ctx, mine[0], anthropic.BetaFileGetMetadataParams{}); err != nil || fo.ID != mine[0] {
		t.Errorf("own metadata: %v", err)
	}
	resp, err = rec.Beta.Files.Download(ctx, mine[0], anthropic.BetaFileDownloadParams{})
	if err != nil {
		t.Fatalf("own download: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "content of mine-0.txt" {
		t.Errorf("own download: %q", b)
	}
	if _, err := rec.Beta.Files.Delete(ctx, mine[0], anthropic.BetaFileDeleteParams{}); err != nil {
		t.Errorf("own delete: %v", err)
	}
	if got, want := list(rec), sorted(mine[1:]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after delete recommendation lists %v, want %v", got, want)
	}
	// The indexer's file is still there.
	if _, err := idx.Beta.Files.GetMetadata(ctx, other, anthropic.BetaFileGetMetadataParams{}); err != nil {
		t.Errorf("indexer's own file after the refused delete: %v", err)
	}
	assertNoLeak(t, "logs", gw.Logs.String())
}

// TestBatchListShowsOnlyOwnBatches: listing batches through the gateway
// shows the caller's batches only, across pages.
func TestBatchListShowsOnlyOwnBatches(t *testing.T) {
	_, up := startUpstream(t)
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("50"))))
	ctx := context.Background()
	rec, idx := sdk(gw, testutil.CanaryToken), sdk(gw, testutil.OtherToken)
	var mine, theirs []string
	for i := range 2 {
		for j := range 4 {
			b, err := idx.Messages.Batches.New(ctx, batchParams(fmt.Sprintf("t%d%d", i, j)))
			if err != nil {
				t.Fatal(err)
			}
			theirs = append(theirs, b.ID)
		}
		b, err := rec.Messages.Batches.New(ctx, batchParams(fmt.Sprintf("m%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, b.ID)
	}
	list := func(c anthropic.Client) []string {
		var ids []string
		it := c.Messages.Batches.ListAutoPaging(ctx, anthropic.MessageBatchListParams{Limit: anthropic.Int(2)})
		for it.Next() {
			ids = append(ids, it.Current().ID)
		}
		if err := it.Err(); err != nil {
			t.Fatalf("list: %v", err)
		}
		sort.Strings(ids)
		return ids
	}
	sort.Strings(mine)
	sort.Strings(theirs)
	if got := list(rec); fmt.Sprint(got) != fmt.Sprint(mine) {
		t.Errorf("recommendation lists %v, want %v", got, mine)
	}
	if got := list(idx); fmt.Sprint(got) != fmt.Sprint(theirs) {
		t.Errorf("indexer lists %v, want %v", got, theirs)
	}
}

// TestOwnershipBehindUpstreamPathPrefix: with an upstream URL that has a
// path of its own, uploads are still recorded and listings still filtered.
func TestOwnershipBehindUpstreamPathPrefix(t *testing.T) {
	f := fakeupstream.New(testutil.CanaryKey)
	up := httptest.NewServer(http.StripPrefix("/anthropic", f))
	t.Cleanup(up.Close)
	gw := testutil.StartApp(t, env(t, up.URL+"/anthropic", basePolicy(testpolicy.Daily("50"))))
	ctx := context.Background()
	rec, idx := sdk(gw, testutil.CanaryToken), sdk(gw, testutil.OtherToken)
	theirs, err := idx.Beta.Files.Upload(ctx, anthropic.BetaFileUploadParams{File: anthropic.File(strings.NewReader("x"), "x.txt", "text/plain")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idx.Beta.Files.GetMetadata(ctx, theirs.ID, anthropic.BetaFileGetMetadataParams{}); err != nil {
		t.Errorf("owner reads its file: %v", err)
	}
	page, err := rec.Beta.Files.List(ctx, anthropic.BetaFileListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 0 {
		t.Errorf("another service lists %d files", len(page.Data))
	}
}
