package redisstore

import (
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"
)

func TestStoreMetrics(t *testing.T) {
	storetest.StoreMetrics(t, func(t *testing.T, opts storeopts.Options) budget.Store {
		opts.Prefix = redistest.Prefix(t)
		c := redistest.Client(t, redistest.SharedAddr(t))
		redistest.DropPrefix(t, c, opts.Prefix)
		s, err := New(c, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestStoreOpsListed: every operation the store observes is one
// storemetrics.Ops lists, so its error series exists from the start.
func TestStoreOpsListed(t *testing.T) { storetest.OpsListed(t) }
