// Package batch follows message batches the gateway has seen created until
// they end, and meters their results itself: once per (batch, custom_id),
// at batch prices, whether the service downloads the results once, many
// times or never.
package batch

import (
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

// Record is what the gateway keeps, durably, about one batch it forwarded.
type Record struct {
	ID         string    `json:"id"`
	Service    string    `json:"service"`
	Workspace  string    `json:"workspace"`
	Key        string    `json:"key,omitempty"` // the workspace key's name
	AdmittedAt time.Time `json:"admitted_at"`
	// Hold is the batch's admission reservation (its estimate at batch
	// prices). It is released when every result has been metered.
	Hold budget.Reservation `json:"hold"`
}
