package app

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// text reads what a lockedWriter over a bytes.Buffer holds, under its
// lock: the logger's flush goroutine writes to it while the test reads.
func (l *lockedWriter) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.(*bytes.Buffer).String()
}

func TestLogLinesHeldUntilFlushAndWrittenAtStop(t *testing.T) {
	w := &lockedWriter{w: &bytes.Buffer{}}
	// An hour between flushes: nothing but stop can write the line.
	l, err := newLogger("info", "json", w, 3600e9)
	log, stop := l.Logger, l.stop
	if err != nil {
		t.Fatal(err)
	}
	log.Info("request", zap.String("k", "v"))
	if got := w.text(); got != "" {
		t.Fatalf("a buffered line was written before a flush: %q", got)
	}
	stop()
	if got := w.text(); !strings.Contains(got, `"msg":"request"`) || !strings.Contains(got, `"k":"v"`) {
		t.Errorf("after stop the log holds %q, want the line", got)
	}
}

func TestLogLinesWrittenAtOnceWithoutFlushInterval(t *testing.T) {
	w := &lockedWriter{w: &bytes.Buffer{}}
	l, err := newLogger("info", "json", w, 0)
	log, stop := l.Logger, l.stop
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	log.Info("request")
	if got := w.text(); !strings.Contains(got, `"msg":"request"`) {
		t.Errorf("log holds %q right after the call, want the line", got)
	}
}

// syncCounter is a destination that counts Sync calls, as an *os.File
// would turn each into an fsync.
type syncCounter struct {
	lockedWriter
	syncs atomic.Int64
}

func (s *syncCounter) Sync() error { s.syncs.Add(1); return nil }

func TestLogFlushesWriteWithoutSyncing(t *testing.T) {
	w := &syncCounter{lockedWriter: lockedWriter{w: &bytes.Buffer{}}}
	l, err := newLogger("info", "json", w, time.Millisecond)
	log, stop := l.Logger, l.stop
	if err != nil {
		t.Fatal(err)
	}
	log.Info("request")
	for deadline := time.Now().Add(10 * time.Second); w.text() == ""; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no flush wrote the line")
		}
	}
	// Let more flushes tick with nothing to write.
	time.Sleep(20 * time.Millisecond)
	stop()
	if n := w.syncs.Load(); n != 0 {
		t.Errorf("flushes synced the destination %d times, want 0", n)
	}
}

func TestSpendLogFileGetsHeldLinesAtClose(t *testing.T) {
	path := t.TempDir() + "/spend.log"
	w, closeFn, err := newSpendLogger(path, nil, 3600e9)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, `{"logger":"spend","k":"v"}`+"\n"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("a held line reached the file before close: %q", b)
	}
	closeFn()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"logger":"spend"`) || !strings.Contains(string(b), `"k":"v"`) {
		t.Errorf("spend log file holds %q after close, want the line", b)
	}
}

func TestConfigLogFlushInterval(t *testing.T) {
	c, err := loadConfig(func(string) string { return "" })
	if err != nil || c.LogFlush != 100e6 {
		t.Errorf("default flush interval %v (err %v), want 100ms", c.LogFlush, err)
	}
	if _, err := loadConfig(func(k string) string {
		return map[string]string{"CLADE_LOG_FLUSH_INTERVAL": "-1s"}[k]
	}); err == nil || !strings.Contains(err.Error(), "CLADE_LOG_FLUSH_INTERVAL") {
		t.Errorf("a negative flush interval: err %v, want one naming CLADE_LOG_FLUSH_INTERVAL", err)
	}
}

// The demo's spend summary gets what a buffered log gathered: several
// records in one write, each summarised.
func TestSpendSummaryTakesSeveralLinesPerWrite(t *testing.T) {
	var out bytes.Buffer
	s := &spendSummary{w: &out}
	in := `{"msg":"spend","service":"a","model":"m","input_tokens":1,"output_tokens":2,"total_usd":"0.01","request_id":"r1"}` + "\n" +
		"not a record\n" +
		`{"msg":"spend","service":"b","model":"m","input_tokens":3,"output_tokens":4,"total_usd":"0.02","request_id":"r2"}` + "\n"
	if n, err := s.Write([]byte(in)); err != nil || n != len(in) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(in))
	}
	want := "spend: $0.01  a  m  1 input + 2 output tokens  (r1)\n" +
		"not a record\n" +
		"spend: $0.02  b  m  3 input + 4 output tokens  (r2)\n"
	if out.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestRequestLinesByHandOnlyForJSONAtInfo(t *testing.T) {
	for _, tc := range []struct {
		level, format string
		byHand        bool
	}{
		{"info", "json", true},
		{"debug", "json", true},
		{"warn", "json", false},
		{"info", "console", false},
	} {
		l, err := newLogger(tc.level, tc.format, &bytes.Buffer{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.requestLines != nil; got != tc.byHand {
			t.Errorf("%s %s: request lines by hand %v, want %v", tc.level, tc.format, got, tc.byHand)
		}
	}
}
