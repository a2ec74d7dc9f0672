package boltstore

import (
	"path/filepath"
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"
)

func BenchmarkBoltReserveSettle(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), storeopts.Options{Timeout: storetest.Timeout})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchReserveSettle(b, s)
}
