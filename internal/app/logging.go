package app

import (
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("CLADE_LOG_LEVEL: %w", err)
	}
	enc, err := encoder(format)
	if err != nil {
		return nil, err
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)), nil
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
// logs. dest is "stdout", "stderr" or a file path (appended to).
func newSpendLogger(dest string, stdout io.Writer) (*zap.Logger, func(), error) {
	var w io.Writer
	closeFn := func() {}
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
		w, closeFn = f, func() { _ = f.Sync(); _ = f.Close() }
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(ec), zapcore.Lock(zapcore.AddSync(w)), zapcore.InfoLevel)
	return zap.New(core).Named("spend"), closeFn, nil
}
