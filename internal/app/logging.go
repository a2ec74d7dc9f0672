package app

import (
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// logBufferSize bounds what a log holds between flushes: at 256 KiB a
// burst of a few hundred lines still goes out in one write.
const logBufferSize = 256 << 10

// logSink is where a logger's lines go: written at once when flush is 0,
// else gathered and written at most flush after the first line held (and
// when the buffer fills), so that a busy gateway makes a write call per
// flush instead of one per line (flushWriter). stop writes what is held;
// serve calls it on the way out.
func logSink(w io.Writer, flush time.Duration) (ws zapcore.WriteSyncer, stop func()) {
	if flush <= 0 {
		return zapcore.Lock(zapcore.AddSync(w)), func() {}
	}
	f := newFlushWriter(w, flush, logBufferSize)
	return f, f.Stop
}

// opsLog is the operational log.
type opsLog struct {
	*zap.Logger
	// requestLines takes the request log's lines, which the proxy builds by
	// hand as the JSON encoder would write them, through the logger's own
	// destination; nil when the format is console or info lines are off.
	requestLines io.Writer
	stop         func() // writes what is held
}

func newLogger(level, format string, w io.Writer, flush time.Duration) (opsLog, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return opsLog{}, fmt.Errorf("CLADE_LOG_LEVEL: %w", err)
	}
	enc, err := encoder(format)
	if err != nil {
		return opsLog{}, err
	}
	ws, stop := logSink(w, flush)
	l := opsLog{Logger: zap.New(zapcore.NewCore(enc, ws, lvl)), stop: stop}
	if format == "json" && lvl.Enabled(zapcore.InfoLevel) {
		l.requestLines = ws
	}
	return l, nil
}

func encoder(format string) (zapcore.Encoder, error) {
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	switch format {
	case "json":
		return zapcore.NewJSONEncoder(ec), nil
	case "console":
		return zapcore.NewConsoleEncoder(ec), nil
	}
	return nil, fmt.Errorf("CLADE_LOG_FORMAT: %q is not json or console", format)
}

// newSpendLogger opens the spend log: one JSON record per metered response,
// on its own destination so finance can keep it apart from operational
// logs. dest is "stdout", "stderr" or a file path (appended to). The
// returned func writes what is held and closes the file. Lines are
// written by package spend, whole, one per Write.
func newSpendLogger(dest string, stdout io.Writer, flush time.Duration) (io.Writer, func(), error) {
	var w io.Writer
	closeFile := func() {}
	switch dest {
	case "stdout", "":
		w = stdout
	case "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(dest, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("CLADE_SPEND_LOG: %w", err)
		}
		w, closeFile = f, func() { _ = f.Sync(); _ = f.Close() }
	}
	ws, stop := logSink(w, flush)
	return ws, func() { stop(); closeFile() }, nil
}
