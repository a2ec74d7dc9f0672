package meter

import "errors"

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("meter: write after close")

// ErrBatchLine reports a batch results line that is not a result object.
var ErrBatchLine = errors.New("meter: malformed batch result line")

// Limits bound the memory a parser may hold, whatever the upstream sends.
type Limits struct {
	// MaxLine is the most bytes of one SSE event's data a parser buffers
	// to decode it (message_start, message_delta, error). A longer event is
	// not decoded; the stream parses on. Default 1 MiB.
	MaxLine int
	// MaxUsageBytes is the biggest top-level "usage" value a JSONExtractor
	// captures. A bigger one is ignored. Default 64 KiB.
	MaxUsageBytes int
}

// DefaultLimits are generous for real responses (a message_start event is
// well under a kilobyte, a usage object a few hundred bytes) and small
// enough that thousands of concurrent streams stay cheap.
func DefaultLimits() Limits {
	return Limits{MaxLine: 1 << 20, MaxUsageBytes: 64 << 10}
}

// withDefaults replaces unset or nonsensical limits by the defaults, so a
// zero Limits{} is safe to pass.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxLine <= 0 {
		l.MaxLine = d.MaxLine
	}
	if l.MaxUsageBytes <= 0 {
		l.MaxUsageBytes = d.MaxUsageBytes
	}
	return l
}

// maxCount is the largest token or request count a parser reports. No
// response comes near it; it keeps a hostile number from overflowing the
// pricing arithmetic (2^40 tokens times a price in nano-USD per token still
// fits in int64).
const maxCount = int64(1) << 40

// maxStringField bounds model, id, tier and error-type strings: longer
// values are not real and are ignored.
const maxStringField = 256
