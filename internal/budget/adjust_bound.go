package budget

import (
	"errors"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// MaxWindowSpend bounds a window's spend as operators adjust it, in either
// direction: $1,000,000,000, far from int64's ±$9.2 billion, so no sum of
// adjustments, settlements and holds can wrap a counter in either store.
const MaxWindowSpend = 1_000_000_000 * money.PerUSD

// ErrAdjustRange reports an adjustment that would take a window's spend
// beyond ±MaxWindowSpend. Nothing is applied.
var ErrAdjustRange = errors.New("budget: the adjustment would take the window's spend beyond ±$1,000,000,000")
