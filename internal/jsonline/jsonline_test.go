package jsonline

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/jsonline/jsonlinetest"
)

// zapLine is what zap's production JSON encoder, as the gateway configures
// it, writes for an info line.
func zapLine(ts time.Time, logger, msg string, f ...zap.Field) []byte {
	var out bytes.Buffer
	jsonlinetest.Logger(&out, ts).Named(logger).Info(msg, f...)
	return out.Bytes()
}

const odd = "q\"b\\s\n\r\t\x01\x1f\x7f é 日本 \xff\xfe <&> \u2028\u2029 \xed\xa0\x80"

func TestLinesAreZapsLines(t *testing.T) {
	ts := time.Date(2026, 12, 8, 9, 30, 0, 120000000, time.FixedZone("CET", 3600))
	at := time.Date(2026, 12, 8, 0, 1, 2, 345678900, time.UTC)
	for _, d := range []time.Duration{0, 1, time.Millisecond, 50824585, 90 * time.Minute, -3 * time.Second, 1<<63 - 1} {
		got := Start(nil, ts, "proxy", "request")
		got = Str(got, "service", odd)
		got = Str(got, odd, "")
		got = Int(got, "status", 200)
		got = Int(got, "min", -1<<63)
		got = Seconds(got, "duration", d)
		got = Bool(got, "stream", true)
		got = Bool(got, "cached", false)
		got = Time(got, "admitted_at", at)
		got = Time(got, "zero", time.Time{})
		got = End(got)
		want := zapLine(ts, "proxy", "request",
			zap.String("service", odd), zap.String(odd, ""), zap.Int("status", 200), zap.Int64("min", -1<<63),
			zap.Duration("duration", d), zap.Bool("stream", true), zap.Bool("cached", false),
			zap.Time("admitted_at", at), zap.Time("zero", time.Time{}))
		if !bytes.Equal(got, want) {
			t.Errorf("duration %v:\n got %s\nwant %s", d, got, want)
		}
		if !json.Valid(got) {
			t.Errorf("not JSON: %s", got)
		}
	}
}

func FuzzString(f *testing.F) {
	f.Add("spend", "plain")
	f.Add(odd, "\x00\"\\")
	ts := time.Date(2026, 12, 8, 9, 30, 0, 1, time.UTC)
	f.Fuzz(func(t *testing.T, key, v string) {
		got := End(Str(Start(nil, ts, "spend", v), key, v))
		if want := zapLine(ts, "spend", v, zap.String(key, v)); !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}
