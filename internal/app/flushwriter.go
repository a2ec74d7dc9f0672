package app

import (
	"io"
	"math"
	"sync"
	"time"
)

// flushWriter gathers lines and writes them to w in one call, every at
// most after the first line it holds, or at once when size bytes would be
// held. Its timer is armed by the first line after a flush, so an idle
// gateway is not woken to find nothing to write (zap's BufferedWriteSyncer
// ticks whether or not it holds anything). A flush only writes; it never
// syncs w.
type flushWriter struct {
	w     io.Writer
	every time.Duration
	size  int

	mu      sync.Mutex
	buf     []byte
	armed   bool // the timer will flush buf
	stopped bool // lines are written at once
	timer   *time.Timer
}

func newFlushWriter(w io.Writer, every time.Duration, size int) *flushWriter {
	f := &flushWriter{w: w, every: every, size: size}
	f.timer = time.AfterFunc(time.Duration(math.MaxInt64), f.flushTimed)
	f.timer.Stop()
	return f
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return f.w.Write(p)
	}
	if len(f.buf)+len(p) > f.size {
		f.flushLocked()
		if len(p) > f.size {
			return f.w.Write(p)
		}
	}
	f.buf = append(f.buf, p...)
	if !f.armed {
		f.armed = true
		f.timer.Reset(f.every)
	}
	return len(p), nil
}

func (f *flushWriter) flushTimed() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = false
	f.flushLocked()
}

func (f *flushWriter) flushLocked() {
	if len(f.buf) == 0 {
		return
	}
	// The log's destination reports its own failures; a line is never
	// worth failing a request for.
	_, _ = f.w.Write(f.buf)
	if cap(f.buf) > f.size {
		f.buf = nil // a burst's buffer does not stay pinned
	} else {
		f.buf = f.buf[:0]
	}
}

// Sync writes what is held (zap calls it; so does Stop).
func (f *flushWriter) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushLocked()
	return nil
}

// Stop writes what is held; later lines are written at once.
func (f *flushWriter) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	f.timer.Stop()
	f.armed = false
	f.flushLocked()
}
