package app

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// writes records each Write call to the destination.
type writes struct {
	mu    sync.Mutex
	calls []string
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, string(p))
	return len(p), nil
}

func (w *writes) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.calls...)
}

func TestFlushWriterWritesHeldLinesOnceThenRestsUntilTheNext(t *testing.T) {
	dst := &writes{}
	f := newFlushWriter(dst, 5*time.Millisecond, 1<<10)
	defer f.Stop()
	_, _ = f.Write([]byte("a\n"))
	_, _ = f.Write([]byte("b\n"))
	for deadline := time.Now().Add(10 * time.Second); len(dst.list()) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("held lines were never written")
		}
	}
	time.Sleep(30 * time.Millisecond) // several intervals with nothing held
	f.mu.Lock()
	armed := f.armed
	f.mu.Unlock()
	if got := dst.list(); len(got) != 1 || got[0] != "a\nb\n" || armed {
		t.Fatalf("writes %q, timer armed %v; want the two lines in one write and no timer while empty", got, armed)
	}
	_, _ = f.Write([]byte("c\n"))
	for deadline := time.Now().Add(10 * time.Second); len(dst.list()) < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a line held after a flush was never written")
		}
	}
	if got := dst.list(); got[1] != "c\n" {
		t.Errorf("second write %q, want the line held after the flush", got[1])
	}
}

func TestFlushWriterWritesAtOnceWhenFull(t *testing.T) {
	dst := &writes{}
	f := newFlushWriter(dst, time.Hour, 8)
	defer f.Stop()
	_, _ = f.Write([]byte("12345\n"))
	_, _ = f.Write([]byte("678\n")) // would hold 10 bytes: the 6 held go first
	_, _ = f.Write([]byte(strings.Repeat("x", 20) + "\n"))
	want := []string{"12345\n", "678\n", strings.Repeat("x", 20) + "\n"}
	if got := dst.list(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("writes %q, want %q: in order, none held beyond the size", got, want)
	}
}

func TestFlushWriterStopWritesWhatIsHeldThenWritesThrough(t *testing.T) {
	var dst bytes.Buffer
	f := newFlushWriter(&dst, time.Hour, 1<<10)
	_, _ = f.Write([]byte("held\n"))
	if dst.Len() != 0 {
		t.Fatalf("a line was written before a flush: %q", dst.String())
	}
	f.Stop()
	_, _ = f.Write([]byte("after\n"))
	if got := dst.String(); got != "held\nafter\n" {
		t.Errorf("destination holds %q, want the held line at stop and the next at once", got)
	}
}

// stalled is a destination whose writes wait until it is released.
type stalled struct {
	writes
	entered chan struct{}
	release chan struct{}
}

func (s *stalled) Write(p []byte) (int, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.writes.Write(p)
}

func TestFlushWriterLinesDoNotWaitForAStalledWrite(t *testing.T) {
	dst := &stalled{entered: make(chan struct{}, 4), release: make(chan struct{})}
	f := newFlushWriter(dst, time.Hour, 1<<10)
	_, _ = f.Write([]byte("first\n"))
	go func() { _ = f.Sync() }()
	<-dst.entered // the flush is writing, and stalls
	done := make(chan struct{})
	go func() {
		_, _ = f.Write([]byte("second\n"))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a line waited for a stalled write")
	}
	close(dst.release)
	f.Stop()
	if got := dst.list(); strings.Join(got, "") != "first\nsecond\n" {
		t.Errorf("writes %q, want the lines in order", got)
	}
}
