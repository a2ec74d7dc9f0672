package meter

import (
	"bytes"

	"github.com/clade-gateway/clade-gateway/internal/jsonscan"
)

// StreamResult is what an SSE stream has reported so far.
type StreamResult struct {
	// Usage is the message_start snapshot, then each message_delta
	// overwrites the fields it carries. Model is message.model.
	Usage     Usage
	MessageID string
	SawStart  bool   // message_start seen (with a usage object)
	SawDelta  bool   // a message_delta with usage seen
	SawStop   bool   // message_stop seen
	ErrorType string // error.type of an error event, e.g. "overloaded_error"
	// StreamedOutputBytes is the data bytes of content_block_delta events,
	// JSON framing included: the bound EstimateInterrupted uses.
	StreamedOutputBytes int64
}

// Complete reports whether the stream carried its final usage: message_start,
// a message_delta with usage and message_stop were seen, and no error event.
// message_start is required too: without it the input side is unknown.
func (r StreamResult) Complete() bool {
	return r.SawStart && r.SawDelta && r.SawStop && r.ErrorType == ""
}

// SSEParser meters an Anthropic SSE stream as it passes. It implements the
// WHATWG event-stream parsing rules (LF, CRLF and CR line endings, a CRLF
// split across writes is one ending, comments, multi-line data joined with
// LF, dispatch on a blank line, a leading BOM ignored). An event still open
// when the stream ends is not dispatched, as the SDKs do.
//
// It holds at most Limits.MaxLine bytes of one event's data, and only for
// the events it decodes. It is not safe for concurrent use.
type SSEParser struct {
	lim    Limits
	res    StreamResult
	valid  Validity
	opaque bool
	closed bool

	bomN    int  // bytes of a leading UTF-8 BOM matched so far
	bomDone bool // past the point where a BOM may appear

	ls        lineState
	cr        bool    // the last byte was CR: a LF right after it ends no line
	field     [8]byte // long enough for "data"; longer names are not ours
	fieldN    int
	fieldLong bool
	isData    bool // the current line is a data line
	nl        [1]byte

	// The event being received.
	dataLines int
	dataBytes int64
	sniff     jsonscan.TopLevel // finds the payload's top-level "type"
	typeBuf   [maxTypeRaw]byte
	sniffing  bool
	typ       eventType
	buf       []byte // its data while it may need decoding
	mode      bufMode
}

type lineState uint8

const (
	lnStart      lineState = iota // at the start of a line
	lnField                       // in the field name
	lnValueStart                  // after "data:": an optional space
	lnValue                       // in a data value
	lnSkip                        // in a comment or a field we ignore
)

type eventType uint8

const (
	evUnknown eventType = iota // type not seen yet
	evOther                    // ping, content_block_start, new types, no type
	evMessageStart
	evMessageDelta
	evMessageStop
	evContentBlockDelta
	evError
	evContentBlockStart
)

func (t eventType) decoded() bool {
	return t == evMessageStart || t == evMessageDelta || t == evError || t == evContentBlockStart
}

type bufMode uint8

const (
	bufMaybe    bufMode = iota // type unknown: hold the data until it is
	bufKeep                    // an event to decode
	bufNone                    // an event not decoded: hold nothing
	bufOverflow                // longer than MaxLine: not decoded
)

// maxTypeRaw bounds the raw "type" value; real ones are under 32 bytes.
const maxTypeRaw = 64

// NewSSEParser returns a parser for one stream. Zero fields of limits take
// the defaults.
func NewSSEParser(limits Limits) *SSEParser {
	p := &SSEParser{
		lim:   limits.withDefaults(),
		sniff: jsonscan.NewTopLevel([jsonscan.MaxTopKeys]string{"type"}, [jsonscan.MaxTopKeys]int{maxTypeRaw}),
		nl:    [1]byte{'\n'},
	}
	p.sniff.SetBuffer(p.typeBuf[:0])
	p.resetEvent()
	return p
}

// Write parses the next bytes of the stream. It always consumes all of b
// and fails only after Close.
func (p *SSEParser) Write(b []byte) (int, error) {
	if p.closed {
		return 0, ErrClosed
	}
	n := len(b)
	if !p.bomDone {
		b = p.skipBOM(b)
	}
	p.lines(b)
	return n, nil
}

// Close marks the end of the stream and releases the buffer. A pending,
// undispatched event is dropped.
func (p *SSEParser) Close() error {
	p.closed = true
	p.buf = nil
	return nil
}

// Result returns what the stream has reported so far; it may be called at
// any point.
func (p *SSEParser) Result() StreamResult { return p.res }

// Validity returns what the stream's usage said beyond its values, since
// the last message_start.
func (p *SSEParser) Validity() Validity { return p.valid }

// Opaque reports whether the stream, since its last message_start, opened
// a content block whose billed tokens its deltas do not bound: only text
// and tool_use blocks show all the output they bill. Thinking is
// summarised (it bills the full thinking), redacted thinking shows none,
// server tool results grow the input server-side, a fallback block starts
// another model, and a block type not listed here may bill anything.
func (p *SSEParser) Opaque() bool { return p.opaque }

const utf8BOM = "\xEF\xBB\xBF"

// skipBOM drops a leading BOM, which may arrive split across writes. If the
// stream starts with only part of one, those bytes are parsed as data.
func (p *SSEParser) skipBOM(b []byte) []byte {
	for len(b) > 0 {
		if b[0] != utf8BOM[p.bomN] {
			p.bomDone = true
			p.lines([]byte(utf8BOM[:p.bomN]))
			return b
		}
		p.bomN++
		b = b[1:]
		if p.bomN == len(utf8BOM) {
			p.bomDone = true
			return b
		}
	}
	return b
}

func (p *SSEParser) lines(b []byte) {
	for len(b) > 0 {
		if p.cr {
			p.cr = false
			if b[0] == '\n' {
				b = b[1:]
				continue
			}
		}
		switch p.ls {
		case lnStart:
			switch c := b[0]; c {
			case '\n', '\r':
				p.cr = c == '\r'
				b = b[1:]
				p.dispatch()
			case ':':
				p.ls = lnSkip
				b = b[1:]
			default:
				p.ls, p.fieldN, p.fieldLong = lnField, 0, false
			}
		case lnField:
			i := indexFieldEnd(b)
			if i < 0 {
				p.addField(b)
				return
			}
			p.addField(b[:i])
			c := b[i]
			b = b[i+1:]
			p.beginValue()
			switch {
			case c != ':': // a line with no colon: the value is empty
				p.cr, p.ls = c == '\r', lnStart
			case p.isData:
				p.ls = lnValueStart
			default:
				p.ls = lnSkip
			}
		case lnValueStart:
			if b[0] == ' ' {
				b = b[1:]
			}
			p.ls = lnValue
		case lnValue, lnSkip:
			i := indexEOL(b)
			if i < 0 {
				if p.ls == lnValue {
					p.data(b)
				}
				return
			}
			if p.ls == lnValue {
				p.data(b[:i])
			}
			p.cr, p.ls = b[i] == '\r', lnStart
			b = b[i+1:]
		}
	}
}

func (p *SSEParser) addField(b []byte) {
	if p.fieldLong || p.fieldN+len(b) > len(p.field) {
		p.fieldLong = true
		return
	}
	p.fieldN += copy(p.field[p.fieldN:], b)
}

// beginValue starts the value of the field just read. Only data matters:
// the payload's "type", not the event: field, says what an event is, and
// id and retry have no bearing on usage.
func (p *SSEParser) beginValue() {
	p.isData = !p.fieldLong && string(p.field[:p.fieldN]) == "data"
	if !p.isData {
		return
	}
	if p.dataLines > 0 {
		p.data(p.nl[:]) // data lines are joined with LF
	}
	p.dataLines++
}

// data takes bytes of the current event's data.
func (p *SSEParser) data(b []byte) {
	p.dataBytes += int64(len(b))
	for rest := b; p.sniffing && len(rest) > 0; {
		n, got := p.sniff.Feed(rest)
		rest = rest[n:]
		switch {
		case got && p.typ == evUnknown:
			_, raw, overflow := p.sniff.Captured()
			p.typ = typeOf(raw, overflow)
			// message_stop is not decoded, so check that its payload is
			// a whole object instead; nothing else needs the scanner.
			p.sniffing = p.typ == evMessageStop
		case p.typ == evUnknown && p.sniff.Done():
			p.typ, p.sniffing = evOther, false // an object with no type
		}
	}
	switch {
	case p.mode == bufNone || p.mode == bufOverflow:
		return
	case p.typ != evUnknown && !p.typ.decoded():
		p.mode, p.buf = bufNone, p.buf[:0]
		return
	case p.typ != evUnknown:
		p.mode = bufKeep
	}
	need := len(p.buf) + len(b)
	if need > p.lim.MaxLine {
		p.mode, p.buf = bufOverflow, p.buf[:0]
		return
	}
	if need > cap(p.buf) {
		// Grow by hand so the capacity, too, never exceeds MaxLine.
		grown := make([]byte, len(p.buf), min(max(2*cap(p.buf), need, 512), p.lim.MaxLine))
		copy(grown, p.buf)
		p.buf = grown
	}
	p.buf = append(p.buf, b...)
}

// dispatch ends the current event at a blank line.
func (p *SSEParser) dispatch() {
	if p.dataLines > 0 {
		switch p.typ {
		case evContentBlockDelta:
			p.res.StreamedOutputBytes += p.dataBytes
		case evMessageStop:
			if p.sniff.Complete() {
				p.res.SawStop = true
			}
		case evMessageStart, evMessageDelta, evError:
			if p.mode == bufKeep {
				p.decode()
			}
		case evContentBlockStart:
			if p.mode == bufKeep {
				p.decode()
			} else {
				p.opaque = true // too long to read: not a block whose output shows
			}
		}
	}
	p.resetEvent()
}

// maxIdleBuf is the buffer capacity kept between events; a rare big event
// does not pin MaxLine bytes for the rest of a long stream.
const maxIdleBuf = 16 << 10

func (p *SSEParser) resetEvent() {
	p.dataLines, p.dataBytes = 0, 0
	p.sniff.Reset()
	p.sniffing, p.typ, p.mode = true, evUnknown, bufMaybe
	if cap(p.buf) > maxIdleBuf {
		p.buf = nil
	}
	p.buf = p.buf[:0]
}

// indexEOL returns the index of the first CR or LF in b, or -1.
func indexEOL(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	head := b
	if i >= 0 {
		head = b[:i]
	}
	if j := bytes.IndexByte(head, '\r'); j >= 0 {
		return j
	}
	return i
}

// indexFieldEnd returns the index of the first ':', CR or LF in b, or -1.
func indexFieldEnd(b []byte) int {
	for i, c := range b {
		if c == ':' || c == '\r' || c == '\n' {
			return i
		}
	}
	return -1
}
