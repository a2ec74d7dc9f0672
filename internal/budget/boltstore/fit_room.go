package boltstore

import (
	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
)

// room returns what the tightest enforced budget has left at levels and
// its index; ok is false when no budget is enforced.
func room(budgets []budget.Budget, levels []budget.Level) (left money.Nanos, at int, ok bool) {
	at = -1
	for i, b := range budgets {
		if !b.Enforce {
			continue
		}
		if l := b.Limit - levels[i].Spent - levels[i].Reserved; !ok || l < left {
			left, at, ok = l, i, true
		}
	}
	return left, at, ok
}
