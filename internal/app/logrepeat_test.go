package app

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// A flood of identical store errors (go-redis dialing a dead server)
// becomes one line per window, each saying how many it stands for;
// different lines are not held back by each other.
func TestRedisLoggerHoldsBackRepeats(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	core, logs := observer.New(zapcore.DebugLevel)
	l := redisLogger{l: zap.New(core), repeats: newRepeats(func() time.Time { return now }, 10*time.Second)}
	const dial = "redis: connection pool: failed to dial after %d attempts: %s"
	for i := 0; i < 256; i++ {
		l.Printf(context.Background(), dial, 1, "dial tcp 127.0.0.1:6379: connect: connection refused")
		if i == 100 {
			l.Printf(context.Background(), "redis: discarding bad PubSub connection")
		}
		now = now.Add(50 * time.Millisecond) // 256 lines in 12.8s
	}
	got := logs.All()
	if len(got) != 3 {
		for _, e := range got {
			t.Log(e.Message, e.ContextMap())
		}
		t.Fatalf("%d lines written, want 3 (first dial, the other line, the dial after the window)", len(got))
	}
	if got[0].ContextMap()["suppressed_repeats"] != nil || got[1].Message != "redis: discarding bad PubSub connection" {
		t.Errorf("first lines %v / %v", got[0].ContextMap(), got[1].Message)
	}
	// Lines 1..199 fall within the 10s window of line 0; line 200 is
	// written with the count.
	if n := got[2].ContextMap()["suppressed_repeats"]; n != int64(199) {
		t.Errorf("suppressed_repeats = %v, want 199", n)
	}
}
