package spend

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// The spend log's line is written here, not through zap: at realistic
// rates, with the caches cold between requests, zap's per-field encoding
// of its thirty fields cost about 7% of a bare proxy's CPU per request
// (bench, 300 requests/s). The line is the one zap's production JSON
// encoder wrote, byte for byte (line_test.go holds the two together):
// level, ts, logger and msg first, then the fields in a fixed order.

// writeLine writes rec's line to r.out.
func (r *Recorder) writeLine(rec Record) {
	bp, _ := r.lines.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b := r.appendLine((*bp)[:0], rec, r.now())
	_, _ = r.out.Write(b) // the log's writer reports its own failures; spend is in the store
	if cap(b) <= 16<<10 { // a rare huge line does not stay pinned
		*bp = b
		r.lines.Put(bp)
	}
}

func (r *Recorder) appendLine(b []byte, rec Record, now time.Time) []byte {
	u := rec.Usage
	b = append(b, `{"level":"info","ts":"`...)
	b = now.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","logger":"spend","msg":"spend"`...)
	b = appendStr(b, "request_id", rec.RequestID)
	b = appendStr(b, "upstream_request_id", rec.UpstreamRequestID)
	b = appendStr(b, "service", rec.Service)
	b = appendStr(b, "team", rec.Team)
	b = appendStr(b, "workspace", rec.Workspace)
	b = appendStr(b, "model", rec.Model)
	b = append(b, `,"admitted_at":"`...)
	b = rec.AdmittedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendInt(b, "input_tokens", u.InputTokens)
	b = appendInt(b, "cache_creation_input_tokens", u.CacheCreationInputTokens)
	b = appendInt(b, "cache_write_5m_tokens", u.CacheWrite5mTokens)
	b = appendInt(b, "cache_write_1h_tokens", u.CacheWrite1hTokens)
	b = appendInt(b, "cache_read_input_tokens", u.CacheReadInputTokens)
	b = appendInt(b, "output_tokens", u.OutputTokens)
	b = appendInt(b, "thinking_tokens", u.ThinkingTokens)
	b = appendInt(b, "web_search_requests", u.WebSearchRequests)
	b = appendInt(b, "web_fetch_requests", u.WebFetchRequests)
	b = appendStr(b, "service_tier", u.ServiceTier)
	b = appendStr(b, "inference_geo", u.InferenceGeo)
	b = appendStr(b, "speed", u.Speed)
	b = appendStr(b, "total_usd", rec.Cost.Total.String())
	for i := range pricing.NumComponents {
		comp := pricing.Component(i)
		b = appendStr(b, r.usdKeys[comp], rec.Cost.Components[comp].String())
	}
	if rec.ChargedBy != "" {
		b = appendStr(b, "charged_by", rec.ChargedBy)
	}
	if rec.MaxTokensFitted > 0 {
		b = appendInt(b, "max_tokens_fitted", rec.MaxTokensFitted)
	}
	if len(rec.Principals) > 0 {
		b = append(b, `,"principals":{`...)
		for i, p := range rec.Principals {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, p.From)
			b = append(b, ':')
			b = appendString(b, p.Value)
		}
		b = append(b, '}')
	}
	return append(b, "}\n"...)
}

func appendStr(b []byte, key, v string) []byte {
	b = append(b, ',')
	b = appendString(b, key)
	b = append(b, ':')
	return appendString(b, v)
}

func appendInt(b []byte, key string, v int64) []byte {
	b = append(b, ',')
	b = appendString(b, key)
	b = append(b, ':')
	return strconv.AppendInt(b, v, 10)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string as zap escapes it: '"', '\\'
// and control characters escaped (\n, \r, \t, else \u00XX), invalid UTF-8
// bytes replaced by \ufffd, everything else as it is.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			b = append(b, s[last:i]...)
			b = append(b, `\ufffd`...)
			i++
			last = i
			continue
		}
		if c >= 0x20 && c != '\\' && c != '"' {
			i++
			continue
		}
		b = append(b, s[last:i]...)
		switch c {
		case '\\', '"':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		i++
		last = i
	}
	b = append(b, s[last:]...)
	return append(b, '"')
}
