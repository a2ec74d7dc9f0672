package storeopts

import (
	"fmt"
	"strings"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Defaults for Options.
const (
	DefaultPrefix  = "clade"
	DefaultTimeout = 500 * time.Millisecond
	DefaultTTL     = 10 * time.Minute
)

// Options configure either store.
type Options struct {
	// Prefix is the Redis key prefix, wrapped in one hash tag ("{clade}")
	// so every key lives in one Cluster slot. Default "clade". Unused by
	// the embedded store.
	Prefix string
	// Clock decides windows, lease expiry and lock expiry. Default
	// time.Now. It is passed into every Lua script as an argument rather
	// than read from Redis TIME, so tests can drive it; replicas' clock
	// skew (milliseconds under NTP) only shifts lease ends by that much.
	Clock func() time.Time
	// Timeout bounds every store call in addition to the caller's context.
	// Default 500ms.
	Timeout time.Duration
	// DefaultTTL is the lease of a hold whose TTL is zero. Default 10m.
	DefaultTTL time.Duration
	// ExpectEpoch, when set, is the store epoch this gateway must find; an
	// absent or different epoch means the store lost its data.
	ExpectEpoch string
	// EpochFile, when set, persists the epoch (in CLADE_DATA_DIR) so that a
	// gateway restarted against an emptied store also refuses to admit.
	EpochFile string
	// LedgerRetention is how long the spend ledger keeps an hour. Default
	// DefaultLedgerRetention (400 days).
	LedgerRetention time.Duration
	// Registerer receives the store metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger reports epoch changes and best-effort cleanups. Default nop.
	Logger *zap.Logger
}

// WithDefaults fills in the defaults and checks the prefix, which becomes
// the Redis hash tag and so may not hold braces.
func (o Options) WithDefaults() (Options, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return o, fmt.Errorf("%w: prefix %q must not contain braces (it becomes the hash tag)", budget.ErrInvalid, o.Prefix)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.DefaultTTL <= 0 {
		o.DefaultTTL = DefaultTTL
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.LedgerRetention <= 0 {
		o.LedgerRetention = budget.DefaultLedgerRetention
	}
	return o, nil
}
