// Package trail keeps, in the budget store, the facts an access review
// needs and the gateway otherwise forgets: when each service token was last
// used, and every budget adjustment an operator made. Both live in the
// store's durable records, so replicas share them and the checklist command
// can read them back.
package trail

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Record kinds and ids in the store. They are part of the store's layout:
// an older gateway ignores them, a newer one reads them.
const (
	kindLastUsed    = "token_last_used"    // id: hex sha256 of the token, value: RFC 3339 time
	kindAdjustments = "budget_adjustments" // id: time-ordered unique id, value: Adjustment as JSON
	kindMeta        = "trail"
	idSince         = "last_used_since" // value: RFC 3339 time the first recorder started
)

// AdjustmentRetention is how long adjustment records are kept: the review
// looks back 30 days, and a quarter is what an auditor asks for.
const AdjustmentRetention = 90 * 24 * time.Hour

// Lister reads records; both budget stores implement it, and so do their
// read-only readers.
type Lister interface {
	ListRecords(ctx context.Context, kind string) (map[string][]byte, error)
}

// Records is the part of a budget store the trail writes to.
type Records interface {
	Lister
	PutRecord(ctx context.Context, kind, id string, v []byte) error
	DeleteRecord(ctx context.Context, kind, id string) error
}

// Adjustment is one budget adjustment as the admin API applied it.
type Adjustment struct {
	At        time.Time `json:"at"`
	Scope     string    `json:"scope"`
	Name      string    `json:"name"`
	ID        string    `json:"id"`
	AmountUSD string    `json:"amount_usd"` // positive debits, negative credits
	Reason    string    `json:"reason"`
	Actor     string    `json:"actor"`
	Remote    string    `json:"remote"`
}

// Reader reads the trail back.
type Reader struct {
	Records Lister
}

// LastUsed returns when each token (by its sha256) was last used, and since
// when use has been recorded at all (zero when never). A token missing from
// used has not been used since then.
func (r Reader) LastUsed(ctx context.Context) (used map[[sha256.Size]byte]time.Time, since time.Time, err error) {
	meta, err := r.Records.ListRecords(ctx, kindMeta)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("trail: read last-used start: %w", err)
	}
	if v, ok := meta[idSince]; ok {
		since, _ = time.Parse(time.RFC3339, string(v))
	}
	all, err := r.Records.ListRecords(ctx, kindLastUsed)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("trail: read last-used records: %w", err)
	}
	used = make(map[[sha256.Size]byte]time.Time, len(all))
	for id, v := range all {
		var d [sha256.Size]byte
		if n, err := hex.Decode(d[:], []byte(id)); err != nil || n != len(d) {
			continue // not ours
		}
		if t, err := time.Parse(time.RFC3339, string(v)); err == nil {
			used[d] = t
		}
	}
	return used, since, nil
}

// Adjustments returns the adjustments made at or after since, oldest first.
func (r Reader) Adjustments(ctx context.Context, since time.Time) ([]Adjustment, error) {
	all, err := r.Records.ListRecords(ctx, kindAdjustments)
	if err != nil {
		return nil, fmt.Errorf("trail: read adjustments: %w", err)
	}
	var out []Adjustment
	for _, v := range all {
		var a Adjustment
		if json.Unmarshal(v, &a) != nil || a.At.Before(since) {
			continue
		}
		out = append(out, a)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}
