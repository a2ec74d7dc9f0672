package boltstore

import "github.com/clade-gateway/clade-gateway/internal/budget"

// adjustInRange reports whether cur+delta stays within ±MaxWindowSpend,
// without computing a sum that could itself overflow.
func adjustInRange(cur, delta int64) bool {
	const m = int64(budget.MaxWindowSpend)
	if delta > 2*m || delta < -2*m {
		return false
	}
	if delta >= 0 {
		return cur <= m-delta
	}
	return cur >= -m-delta
}
