package app

import (
	"sync"
	"time"
)

// repeatWindow is how long identical lines are held back after one is
// logged. While Redis is down, go-redis logs one dial failure per pooled
// connection attempt: hundreds of identical lines a minute that bury
// everything else.
const repeatWindow = 10 * time.Second

// maxRepeatKeys bounds the lines remembered; past it, memory starts over.
const maxRepeatKeys = 256

// repeats decides which of a stream of log lines to write: the first of
// each distinct line, then at most one per window, carrying how many
// identical lines were suppressed since the last one written.
type repeats struct {
	mu     sync.Mutex
	now    func() time.Time
	window time.Duration
	seen   map[string]*repeat
}

type repeat struct {
	at         time.Time // when the line was last written
	suppressed int
}

func newRepeats(now func() time.Time, window time.Duration) *repeats {
	return &repeats{now: now, window: window, seen: map[string]*repeat{}}
}

// admit reports whether msg is written now and, if so, how many identical
// lines were suppressed before it.
func (r *repeats) admit(msg string) (ok bool, suppressed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	e := r.seen[msg]
	if e == nil {
		if len(r.seen) >= maxRepeatKeys {
			clear(r.seen)
		}
		r.seen[msg] = &repeat{at: now}
		return true, 0
	}
	if now.Sub(e.at) < r.window {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.at, e.suppressed = now, 0
	return true, n
}
