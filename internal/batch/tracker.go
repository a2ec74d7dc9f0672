package batch

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Records is the store's small durable key-value space (budget stores
// implement it), shared by every replica.
type Records interface {
	PutRecord(ctx context.Context, kind, id string, v []byte) error
	GetRecord(ctx context.Context, kind, id string) ([]byte, bool, error)
	DeleteRecord(ctx context.Context, kind, id string) error
	ListRecords(ctx context.Context, kind string) (map[string][]byte, error)
	TryLock(ctx context.Context, name string, ttl time.Duration) (bool, error)
}

const (
	kindBatch = "batch"      // batches being followed
	kindOwner = "batchowner" // batch id -> service, kept after the batch ends
)

// Tracker records batches and their owners in the shared store.
type Tracker struct{ r Records }

// NewTracker returns a Tracker over r.
func NewTracker(r Records) *Tracker { return &Tracker{r: r} }

// Track starts following a batch. It must succeed before the batch object
// is returned to the client, so no batch escapes metering.
func (t *Tracker) Track(ctx context.Context, rec Record) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("batch: encode: %w", err)
	}
	if err := t.r.PutRecord(ctx, kindOwner, rec.ID, []byte(rec.Service)); err != nil {
		return fmt.Errorf("batch: record owner of %s: %w", rec.ID, err)
	}
	if err := t.r.PutRecord(ctx, kindBatch, rec.ID, v); err != nil {
		return fmt.Errorf("batch: track %s: %w", rec.ID, err)
	}
	return nil
}

// Owner returns the service that created a batch through the gateway.
func (t *Tracker) Owner(ctx context.Context, id string) (string, bool, error) {
	v, ok, err := t.r.GetRecord(ctx, kindOwner, id)
	if err != nil {
		return "", false, fmt.Errorf("batch: owner of %s: %w", id, err)
	}
	return string(v), ok, nil
}

// pending lists the batches still being followed.
func (t *Tracker) pending(ctx context.Context) ([]Record, error) {
	all, err := t.r.ListRecords(ctx, kindBatch)
	if err != nil {
		return nil, fmt.Errorf("batch: list: %w", err)
	}
	out := make([]Record, 0, len(all))
	for id, v := range all {
		var rec Record
		if err := json.Unmarshal(v, &rec); err != nil {
			return nil, fmt.Errorf("batch: decode %s: %w", id, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

func (t *Tracker) done(ctx context.Context, id string) error {
	return t.r.DeleteRecord(ctx, kindBatch, id)
}
