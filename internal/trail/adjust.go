package trail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// AdjustmentLog records budget adjustments in the store for review.
type AdjustmentLog struct {
	Records Records
	Now     func() time.Time
}

// RecordAdjustment stores a (its At is set from the clock when zero) and
// drops records older than AdjustmentRetention. Adjustments are rare and
// made by people, so listing them all on each write costs nothing that
// matters.
func (l AdjustmentLog) RecordAdjustment(ctx context.Context, a Adjustment) error {
	now := l.Now()
	if a.At.IsZero() {
		a.At = now
	}
	a.At = a.At.UTC()
	v, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("trail: encode adjustment: %w", err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	// The time first keeps ids in order in redis-cli and bbolt; the random
	// part keeps two adjustments in one nanosecond (two replicas) apart.
	id := a.At.Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(rnd[:])
	if err := l.Records.PutRecord(ctx, kindAdjustments, id, v); err != nil {
		return fmt.Errorf("trail: record adjustment: %w", err)
	}
	l.prune(ctx, now)
	return nil
}

// prune drops adjustments past their retention. It is best effort: the
// adjustment is recorded, and what fails to go now goes with the next one.
func (l AdjustmentLog) prune(ctx context.Context, now time.Time) {
	all, err := l.Records.ListRecords(ctx, kindAdjustments)
	if err != nil {
		return
	}
	cutoff := now.Add(-AdjustmentRetention)
	for old, v := range all {
		var x Adjustment
		if json.Unmarshal(v, &x) == nil && x.At.Before(cutoff) {
			_ = l.Records.DeleteRecord(ctx, kindAdjustments, old)
		}
	}
}
