package owner

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
)

func TestFilesRecordOwnerForget(t *testing.T) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "b.db"), storeopts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	f := NewFiles(st)
	if _, ok, err := f.Owner(ctx, "file_1"); ok || err != nil {
		t.Fatalf("unknown file: ok=%t err=%v", ok, err)
	}
	if err := f.Record(ctx, "file_1", "recommendation"); err != nil {
		t.Fatal(err)
	}
	if o, ok, err := f.Owner(ctx, "file_1"); o != "recommendation" || !ok || err != nil {
		t.Fatalf("owner = %q %t %v", o, ok, err)
	}
	if err := f.Forget(ctx, "file_1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := f.Owner(ctx, "file_1"); ok {
		t.Error("forgotten file still has an owner")
	}
}
