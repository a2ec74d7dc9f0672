package meter

import "github.com/clade-gateway/clade-gateway/internal/jsonscan"

// JSONExtractor meters a non-streaming JSON response (a Message, a
// count_tokens answer, an error) as it passes. It scans the bytes once,
// tracking nesting and string state, and keeps only the values of the
// top-level "usage", "model" and "id" keys, so a response with a 100 MB
// content string costs no more memory than a short one. Keys named "usage"
// deeper in the document (tool inputs, iterations) are not the response's
// usage and are ignored. It is not safe for concurrent use.
type JSONExtractor struct {
	sc     jsonscan.TopLevel
	closed bool

	usage Usage
	valid Validity
	found bool
	model string
	id    string
}

// Slots of the keys the scanner captures.
const (
	slotUsage = iota
	slotModel
	slotID
)

// NewJSONExtractor returns an extractor for one response body. Zero fields
// of limits take the defaults.
func NewJSONExtractor(limits Limits) *JSONExtractor {
	l := limits.withDefaults()
	return &JSONExtractor{
		sc: jsonscan.NewTopLevel(
			[jsonscan.MaxTopKeys]string{slotUsage: "usage", slotModel: "model", slotID: "id"},
			[jsonscan.MaxTopKeys]int{l.MaxUsageBytes, maxStringField * 6, maxStringField * 6}, // room for \u escapes
		),
	}
}

// Write scans the next bytes of the body. It always consumes all of b and
// fails only after Close.
func (j *JSONExtractor) Write(b []byte) (int, error) {
	if j.closed {
		return 0, ErrClosed
	}
	n := len(b)
	for len(b) > 0 {
		m, got := j.sc.Feed(b)
		b = b[m:]
		if got {
			j.take()
		}
	}
	return n, nil
}

// Close marks the end of the body.
func (j *JSONExtractor) Close() error {
	j.closed = true
	j.sc.SetBuffer(nil)
	return nil
}

// take records a captured top-level value. As in encoding/json, the last
// occurrence of a duplicated key wins, even when it is unusable.
func (j *JSONExtractor) take() {
	slot, raw, overflow := j.sc.Captured()
	if overflow {
		raw = nil
	}
	switch slot {
	case slotUsage:
		j.usage, j.valid, j.found = decodeUsageChecked(raw)
	case slotModel:
		j.model = decodeText(raw)
	case slotID:
		j.id = decodeText(raw)
	}
}

// Result returns the top-level usage with Model set from the top-level
// "model". ok reports whether a "usage" object was found and decoded.
func (j *JSONExtractor) Result() (Usage, bool) {
	u := j.usage
	u.Model = j.model
	return u, j.found
}

// Validity returns what the top-level usage said beyond its values.
func (j *JSONExtractor) Validity() Validity { return j.valid }

// ID returns the top-level "id" (the message id), or "".
func (j *JSONExtractor) ID() string { return j.id }
