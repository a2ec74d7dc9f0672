package meter

import (
	"bytes"

	"github.com/clade-gateway/clade-gateway/internal/jsonscan"
)

// typeOf maps a payload's raw "type" value to the events we act on.
func typeOf(raw []byte, overflow bool) eventType {
	if overflow || len(raw) < 2 || raw[0] != '"' {
		return evOther
	}
	// Every event has a type, and real ones have no escapes: compare those
	// in place; a string with escapes is read as encoding/json reads it.
	s := raw[1 : len(raw)-1]
	if bytes.IndexByte(s, '\\') >= 0 {
		t, _, ok := jsonscan.Text(raw)
		if !ok {
			return evOther
		}
		s = t
	}
	switch string(s) {
	case "message_start":
		return evMessageStart
	case "message_delta":
		return evMessageDelta
	case "message_stop":
		return evMessageStop
	case "content_block_delta":
		return evContentBlockDelta
	case "content_block_start":
		return evContentBlockStart
	case "error":
		return evError
	}
	return evOther
}

// decode records a usage-bearing event. A payload that is not valid JSON
// records nothing: each case acts only once Fields has validated the whole
// payload (it is an object, since its type was read from a top-level key).
func (p *SSEParser) decode() {
	switch p.typ {
	case evMessageStart:
		var msg []byte
		if !jsonscan.Fields(p.buf, func(key, v []byte) {
			if string(key) == "message" {
				msg = v
			}
		}) {
			return
		}
		var id, model text
		var w wireUsage
		jsonscan.Fields(msg, func(key, v []byte) {
			switch string(key) {
			case "id":
				id.parse(v)
			case "model":
				model.parse(v)
			case "usage":
				w = parseUsage(v)
			}
		})
		if !w.set {
			return // without usage the input side is unknown: not a start
		}
		// message_start replaces the message, as the SDK accumulators do;
		// a second one means the final usage seen so far is not final.
		var u Usage
		u.apply(&w)
		u.Model = model.v
		p.valid = Validity{}
		p.valid.note(&w)
		p.opaque = false
		p.res.Usage, p.res.MessageID, p.res.SawStart = u, id.v, true
		p.res.SawDelta, p.res.SawStop = false, false
	case evMessageDelta:
		var w wireUsage
		if !jsonscan.Fields(p.buf, func(key, v []byte) {
			if string(key) == "usage" {
				w = parseUsage(v)
			}
		}) {
			return
		}
		if w.set {
			p.res.Usage.apply(&w)
			p.valid.note(&w)
			p.res.SawDelta = true
		}
	case evContentBlockStart:
		var typ text
		if !jsonscan.Fields(p.buf, func(key, v []byte) {
			if string(key) == "content_block" {
				typ = text{}
				jsonscan.Fields(v, func(key, v []byte) {
					if string(key) == "type" {
						typ.parse(v)
					}
				})
			}
		}) {
			return
		}
		if typ.v != "text" && typ.v != "tool_use" {
			p.opaque = true
		}
	case evError:
		var typ text
		if !jsonscan.Fields(p.buf, func(key, v []byte) {
			if string(key) == "error" {
				typ = text{}
				jsonscan.Fields(v, func(key, v []byte) {
					if string(key) == "type" {
						typ.parse(v)
					}
				})
			}
		}) {
			return
		}
		p.res.ErrorType = typ.v
		if p.res.ErrorType == "" {
			p.res.ErrorType = "error" // an error without a usable type is still one
		}
	}
}
