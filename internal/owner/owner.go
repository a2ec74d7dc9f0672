// Package owner records which service created an object (a file uploaded
// through the gateway) in the budget store's shared record space, so every
// replica can keep a service to its own objects.
package owner

import (
	"context"
	"fmt"
)

// Records is the part of the store's durable key-value space used here;
// budget stores implement it.
type Records interface {
	PutRecord(ctx context.Context, kind, id string, v []byte) error
	GetRecord(ctx context.Context, kind, id string) ([]byte, bool, error)
	DeleteRecord(ctx context.Context, kind, id string) error
}

const kindFile = "fileowner" // file id -> service

// Files records the owners of uploaded files.
type Files struct{ r Records }

// NewFiles returns a Files over r.
func NewFiles(r Records) *Files { return &Files{r: r} }

// Record notes that service uploaded file id.
func (f *Files) Record(ctx context.Context, id, service string) error {
	if err := f.r.PutRecord(ctx, kindFile, id, []byte(service)); err != nil {
		return fmt.Errorf("owner: record file %s: %w", id, err)
	}
	return nil
}

// Owner returns the service that uploaded file id through the gateway.
func (f *Files) Owner(ctx context.Context, id string) (string, bool, error) {
	v, ok, err := f.r.GetRecord(ctx, kindFile, id)
	if err != nil {
		return "", false, fmt.Errorf("owner: file %s: %w", id, err)
	}
	return string(v), ok, nil
}

// Forget drops the record of a deleted file.
func (f *Files) Forget(ctx context.Context, id string) error {
	if err := f.r.DeleteRecord(ctx, kindFile, id); err != nil {
		return fmt.Errorf("owner: forget file %s: %w", id, err)
	}
	return nil
}
