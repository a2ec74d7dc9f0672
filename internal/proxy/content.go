package proxy

import (
	"bytes"
	"encoding/json"
)

// contentScan is what a request's conversation (messages and system)
// points at beyond its own bytes. A token of text is at least one byte of
// the body, so text bounds itself; these do not:
//   - an image or document by URL or by file id: its content is not in the
//     body at all (and a URL's content can change between a count and the
//     request, so even count_tokens does not bound it);
//   - a base64 image: billed by its pixels after resizing, which a small,
//     highly compressible file does not bound;
//   - a base64 PDF: billed per page, as text and as an image;
//   - a container upload: a file the code execution tool reads server-side;
//   - any other file_id, or a source of a type the gateway does not know.
//
// Each is bounded by the model's context window (pricing.Request
// ContextBound): the API refuses a prompt longer than it, so it bounds all
// input of one sampling iteration. The scan is deliberately wide: an
// object anywhere in the conversation (tool results, a tool's input echoed
// back) that looks like a reference counts, since over-holding costs less
// than under-holding.
type contentScan struct {
	pointer    string // the first reason the body does not bound its prompt; "" if none
	serverSide bool   // a container upload: grows input server-side
}

func (s *contentScan) point(why string) {
	if s.pointer == "" {
		s.pointer = why
	}
}

// objInfo is what the scan keeps of one object of the conversation.
type objInfo struct {
	typ       string // its "type", when a short string
	media     string // its "media_type", when a short string
	hasSource bool
	srcType   string
	srcMedia  string
	fileID    bool
}

// member records one member of the object being walked; child is what
// the walk kept of the value if it was an object.
func (o *objInfo) member(key, raw []byte, child objInfo) {
	switch string(key) {
	case "type":
		o.typ = shortString(raw)
	case "media_type":
		o.media = shortString(raw)
	case "source":
		o.hasSource = true
		o.srcType, o.srcMedia = child.typ, child.media
		if len(raw) == 0 || raw[0] != '{' {
			o.srcType = "(not an object)"
		}
	case "file_id":
		o.fileID = true
	}
}

// object classifies a finished object of the conversation.
func (s *contentScan) object(o objInfo) {
	if o.fileID {
		s.point("a file referenced by file_id")
	}
	switch o.typ {
	case "container_upload":
		s.point("a container upload")
		s.serverSide = true
	case "image":
		switch o.srcType {
		case "base64":
			s.point("a base64 image (billed by its pixels, which its bytes do not bound)")
		case "url":
			s.point("an image by URL")
		case "file":
			s.point("an image by file id")
		default:
			if o.hasSource {
				s.point("an image source of type " + quoteShort(o.srcType))
			}
		}
	case "document":
		switch o.srcType {
		case "text", "content":
		case "base64":
			if o.srcMedia != "text/plain" {
				s.point("a base64 document (a PDF bills per page, as text and as an image)")
			}
		case "url":
			s.point("a document by URL")
		case "file":
			s.point("a document by file id")
		default:
			if o.hasSource {
				s.point("a document source of type " + quoteShort(o.srcType))
			}
		}
	default:
		if o.hasSource && o.srcType != "text" && o.srcType != "content" {
			if o.srcType == "base64" && o.srcMedia == "text/plain" {
				return
			}
			s.point("content with a source of type " + quoteShort(o.srcType))
		}
	}
}

// shortString decodes a JSON string of at most 64 bytes; anything else
// reads as "?", which no classification matches.
func shortString(raw []byte) string {
	if len(raw) < 2 || raw[0] != '"' || len(raw) > 66 {
		return "?"
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		if known, ok := commonStrings[string(inner)]; ok {
			return known // no allocation for the values every body has
		}
		return string(inner)
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "?"
	}
	return s
}

func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// commonStrings are the type and media_type values of most objects of a
// conversation, kept so that reading them allocates nothing.
var commonStrings = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{"base64", "url", "file", "text", "content", "ephemeral",
		"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"} {
		m[s] = s
	}
	for s := range knownBlockTypes {
		m[s] = s
	}
	return m
}()

// knownBlockTypes are the content block types of a message the API
// documents. A block of another type may point at content the gateway
// cannot see, so it is bounded like one that does.
var knownBlockTypes = map[string]bool{
	"text": true, "image": true, "document": true, "search_result": true,
	"thinking": true, "redacted_thinking": true, "tool_use": true, "tool_result": true,
	"server_tool_use": true, "web_search_tool_result": true, "web_fetch_tool_result": true,
	"advisor_tool_result": true, "code_execution_tool_result": true,
	"bash_code_execution_tool_result": true, "text_editor_code_execution_tool_result": true,
	"tool_search_tool_result": true, "mcp_tool_use": true, "mcp_tool_result": true,
	"container_upload": true, "compaction": true, "mid_conv_system": true, "fallback": true,
}

// block checks the type of a block of messages[].content or system.
func (s *contentScan) block(typ string) {
	if !knownBlockTypes[typ] {
		s.point("a content block of type " + quoteShort(typ) + " the gateway does not know")
	}
}
