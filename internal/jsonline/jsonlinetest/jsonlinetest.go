// Package jsonlinetest is zap configured as the gateway's JSON log is, for
// tests that hold lines built with jsonline to the lines zap writes.
package jsonlinetest

import (
	"io"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Logger writes info lines to w as the gateway's JSON log does (zap's
// production encoder, RFC 3339 times with nanoseconds), each stamped ts.
func Logger(w io.Writer, ts time.Time) *zap.Logger {
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), zapcore.AddSync(w), zapcore.InfoLevel),
		zap.WithClock(fixedClock(ts)))
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time                         { return time.Time(c) }
func (c fixedClock) NewTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }
