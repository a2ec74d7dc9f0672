package trail_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/trail"
)

// nopRecords is a store that accepts everything: the benchmark measures
// the request-path cost of Used, not the store.
type nopRecords struct{}

func (nopRecords) PutRecord(context.Context, string, string, []byte) error { return nil }
func (nopRecords) DeleteRecord(context.Context, string, string) error      { return nil }
func (nopRecords) ListRecords(context.Context, string) (map[string][]byte, error) {
	return map[string][]byte{"last_used_since": nil}, nil
}

// BenchmarkUsed is the cost a request pays for last-used recording, with
// 1,000 tokens in use from every core.
func BenchmarkUsed(b *testing.B) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	lu := trail.NewLastUsed(nopRecords{}, func() time.Time { return now }, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go lu.Run(ctx)
	digests := make([][sha256.Size]byte, 1000)
	for i := range digests {
		digests[i] = sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		lu.Used(digests[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			lu.Used(digests[i%len(digests)])
			i++
		}
	})
}
