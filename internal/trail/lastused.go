package trail

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"go.uber.org/zap"
)

// LastUsed records when each service token was last used, writing at most
// once per token per clock hour (per replica), off the request path: Used
// costs a map lookup and never waits for the store; Run does the writes.
type LastUsed struct {
	rec   Records
	now   func() time.Time
	log   *zap.Logger
	hours sync.Map // [sha256.Size]byte -> int64: the clock hour last queued for the token
	queue chan use
	since bool // the start of recording is in the store; Run's alone
}

type use struct {
	digest [sha256.Size]byte
	at     time.Time
}

// queueSize bounds the writes waiting for Run. A full queue drops the use
// and forgets its hour, so the token's next request queues it again.
const queueSize = 4096

// NewLastUsed returns a recorder writing to rec. now is the clock the
// recorded times and hours follow.
func NewLastUsed(rec Records, now func() time.Time, log *zap.Logger) *LastUsed {
	if log == nil {
		log = zap.NewNop()
	}
	return &LastUsed{rec: rec, now: now, log: log, queue: make(chan use, queueSize)}
}

func hourOf(t time.Time) int64 { return t.Unix() / 3600 }

// Used notes that the token with this sha256 authenticated a request.
func (l *LastUsed) Used(digest [sha256.Size]byte) {
	now := l.now()
	h := hourOf(now)
	if v, ok := l.hours.Load(digest); ok && v.(int64) == h {
		return
	}
	// Swap decides between concurrent first uses in one hour: only the one
	// that saw another hour queues.
	if prev, loaded := l.hours.Swap(digest, h); loaded && prev.(int64) == h {
		return
	}
	select {
	case l.queue <- use{digest: digest, at: now}:
	default:
		l.hours.CompareAndDelete(digest, h)
	}
}

// flushTimeout bounds the final writes at shutdown.
const flushTimeout = 2 * time.Second

// Run writes queued uses until ctx ends, then writes what is still queued
// (within flushTimeout). It also records, once per store, when recording
// began, so a token with no record can be told apart from one recorded
// too briefly to judge. Run returns when done; close the store after.
func (l *LastUsed) Run(ctx context.Context) {
	// Writes are bounded by the store's own timeout, not cut short by ctx:
	// ctx only says when to stop taking new ones.
	wctx := context.WithoutCancel(ctx)
	l.markSince(wctx)
	for {
		select {
		case u := <-l.queue:
			l.write(wctx, u)
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(wctx, flushTimeout)
			defer cancel()
			for {
				select {
				case u := <-l.queue:
					l.write(fctx, u)
				default:
					return
				}
			}
		}
	}
}

func (l *LastUsed) write(ctx context.Context, u use) {
	if !l.since {
		l.markSince(ctx)
	}
	err := l.rec.PutRecord(ctx, kindLastUsed, hex.EncodeToString(u.digest[:]), []byte(u.at.UTC().Format(time.RFC3339)))
	if err != nil {
		// Forget the hour so the token's next request tries again.
		l.hours.CompareAndDelete(u.digest, hourOf(u.at))
		l.log.Warn("could not record a token's last use; the next request retries", zap.Error(err))
	}
}

func (l *LastUsed) markSince(ctx context.Context) {
	meta, err := l.rec.ListRecords(ctx, kindMeta)
	if err != nil {
		l.log.Warn("could not read when token use recording began", zap.Error(err))
		return
	}
	if _, ok := meta[idSince]; !ok {
		if err := l.rec.PutRecord(ctx, kindMeta, idSince, []byte(l.now().UTC().Format(time.RFC3339))); err != nil {
			l.log.Warn("could not record when token use recording began", zap.Error(err))
			return
		}
	}
	l.since = true
}
