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
//
// Lines are taken from the buffer under mu and written under out, outside
// mu: a write that stalls (a busy disk) holds up the next flush, not the
// requests logging meanwhile. Lines are taken and out is locked under mu,
// so writes reach w in the order their lines arrived.
type flushWriter struct {
	w     io.Writer
	every time.Duration
	size  int
	timer *time.Timer

	mu      sync.Mutex
	buf     []byte // lines held
	spare   []byte // the last written buffer, for reuse
	armed   bool   // the timer will flush buf
	stopped bool   // lines are written at once

	out sync.Mutex // held while writing to w
}

func newFlushWriter(w io.Writer, every time.Duration, size int) *flushWriter {
	f := &flushWriter{w: w, every: every, size: size}
	f.timer = time.AfterFunc(time.Duration(math.MaxInt64), func() { f.flush(false) })
	f.timer.Stop()
	return f
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	if !f.stopped && len(f.buf)+len(p) <= f.size {
		f.buf = append(f.buf, p...)
		if !f.armed {
			f.armed = true
			f.timer.Reset(f.every)
		}
		f.mu.Unlock()
		return len(p), nil
	}
	// Stopped, or full: what is held goes first, then p, written at once
	// unless it fits the emptied buffer.
	held := f.take()
	f.out.Lock()
	direct := f.stopped || len(p) > f.size
	if !direct {
		f.buf = append(f.buf, p...)
		if !f.armed {
			f.armed = true
			f.timer.Reset(f.every)
		}
	}
	f.mu.Unlock()
	f.writeOut(held)
	n, err := len(p), error(nil)
	if direct {
		n, err = f.w.Write(p)
	}
	f.out.Unlock()
	f.recycle(held)
	return n, err
}

// flush writes what is held; stop makes later lines be written at once.
func (f *flushWriter) flush(stop bool) {
	f.mu.Lock()
	if stop {
		f.stopped = true
		f.timer.Stop()
	}
	f.armed = false
	held := f.take()
	f.out.Lock()
	f.mu.Unlock()
	f.writeOut(held)
	f.out.Unlock()
	f.recycle(held)
}

// take hands over the lines held, under mu.
func (f *flushWriter) take() []byte {
	held := f.buf
	f.buf, f.spare = f.spare, nil
	return held
}

// writeOut writes held lines, under out.
func (f *flushWriter) writeOut(held []byte) {
	if len(held) > 0 {
		// The log's destination reports its own failures; a line is never
		// worth failing a request for.
		_, _ = f.w.Write(held)
	}
}

// recycle keeps a written buffer for the next lines; a burst's larger one
// is let go.
func (f *flushWriter) recycle(held []byte) {
	if held == nil || cap(held) > f.size {
		return
	}
	f.mu.Lock()
	if f.spare == nil {
		f.spare = held[:0]
	}
	f.mu.Unlock()
}

// Sync writes what is held (zap calls it before a fatal line).
func (f *flushWriter) Sync() error {
	f.flush(false)
	return nil
}

// Stop writes what is held; later lines are written at once.
func (f *flushWriter) Stop() { f.flush(true) }
