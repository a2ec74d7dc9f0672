// Package jsonline appends log lines in the JSON that zap's production
// encoder writes (with RFC 3339 nanosecond times and durations in
// seconds), byte for byte, without zap's per-field machinery. The lines
// written on every request are built with it: at realistic rates, with
// the caches cold between requests, zap's field-by-field encoding was a
// measurable part of the gateway's CPU per request. Everything else logs
// through zap.
package jsonline

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Start opens an info-level line: level, ts, logger and msg, in zap's order.
func Start(b []byte, ts time.Time, logger, msg string) []byte {
	b = append(b, `{"level":"info","ts":"`...)
	b = ts.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","logger":`...)
	b = String(b, logger)
	b = append(b, `,"msg":`...)
	return String(b, msg)
}

// End closes a line.
func End(b []byte) []byte { return append(b, "}\n"...) }

// Str appends a string member.
func Str(b []byte, key, v string) []byte { return String(key0(b, key), v) }

// Int appends an integer member.
func Int(b []byte, key string, v int64) []byte { return strconv.AppendInt(key0(b, key), v, 10) }

// Bool appends a boolean member.
func Bool(b []byte, key string, v bool) []byte { return strconv.AppendBool(key0(b, key), v) }

// Seconds appends a duration as zap's SecondsDurationEncoder does: a
// float number of seconds.
func Seconds(b []byte, key string, d time.Duration) []byte {
	return strconv.AppendFloat(key0(b, key), float64(d)/float64(time.Second), 'f', -1, 64)
}

// Time appends a time as an RFC 3339 string with nanoseconds.
func Time(b []byte, key string, t time.Time) []byte {
	b = append(key0(b, key), '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// Key appends a member's separator and key; its value follows.
func Key(b []byte, key string) []byte { return key0(b, key) }

func key0(b []byte, key string) []byte {
	b = append(b, ',')
	b = String(b, key)
	return append(b, ':')
}

const hexDigits = "0123456789abcdef"

// String appends s as a JSON string as zap escapes it: '"', '\\' and
// control characters escaped (\n, \r, \t, else \u00XX), invalid UTF-8
// bytes replaced by \ufffd, everything else as it is.
func String(b []byte, s string) []byte {
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
