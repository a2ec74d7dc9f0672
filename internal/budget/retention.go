package budget

import (
	"strings"
	"time"
)

// Lifetimes of a store's bookkeeping records. They bound how late a
// settlement may arrive and still be exact.
const (
	// SettledTTL is how long a settled (or orphaned) hold's record is kept.
	// Within it a repeated settlement is a no-op and a late one corrects an
	// orphan charge exactly; after it a settlement is treated as a replay of
	// an unknown hold and charged in full. Eight days covers a weekend-long
	// outage with journaled settlements plus a day of slack.
	SettledTTL = 8 * 24 * time.Hour
	// windowGrace keeps a window's counters this long after the window ends,
	// so late settlements, reports and audits still find them.
	windowGrace = 35 * 24 * time.Hour
	// maxWindow is the longest window (a 31-day month) with a day of slack:
	// a settlement that creates a window's counters from the key alone
	// cannot know its period, so it assumes the longest.
	maxWindow = 32 * 24 * time.Hour
)

const (
	// principalGrace keeps a principal's window this long after it ends,
	// instead of windowGrace: there may be millions of principals, and a
	// late settlement that finds its window gone recreates it from the key
	// (KeyOnlyTTL), so nothing is lost but an old window's audit trail.
	principalGrace = 2 * 24 * time.Hour
	// principalTotalKeep is how long a principal's total window (a session's,
	// an agent's) lives after the day it was created; without a bound, every
	// session ever seen would stay in the store.
	principalTotalKeep = 90 * 24 * time.Hour
)

// WindowKeyTTL is how long a window's counters live, measured on the
// injected clock: to the window's end plus the grace period, or forever
// (0) for Total budgets.
func WindowKeyTTL(end, now time.Time) time.Duration {
	if end.IsZero() {
		return 0
	}
	return end.Add(windowGrace).Sub(now)
}

// WindowKeyTTL is how long the counters of b's window that ends at end
// live: as the function WindowKeyTTL says, but shorter for principals, and
// bounded for their total windows.
func (b Budget) WindowKeyTTL(end, now time.Time) time.Duration {
	if b.Scope != ScopePrincipal {
		return WindowKeyTTL(end, now)
	}
	if end.IsZero() {
		// Whole days, so the bbolt deadline changes once a day, not per request.
		return now.UTC().Truncate(24 * time.Hour).Add(principalTotalKeep).Sub(now)
	}
	return end.Add(principalGrace).Sub(now)
}

// KeyOnlyTTL is the lifetime given to a window's counters when they are
// first created by a settlement that knows only the key (a journaled
// replay): the key ends in the window's start date ("20261127") or "all".
// It assumes the longest window and never returns less than a day, so a
// very late replay is recorded rather than expiring on arrival.
func KeyOnlyTTL(key string, now time.Time) time.Duration {
	i := strings.LastIndexByte(key, ':')
	if i < 0 || key[i+1:] == "all" {
		return 0
	}
	start, err := time.Parse("20060102", key[i+1:])
	if err != nil {
		return 0
	}
	ttl := start.Add(maxWindow + windowGrace).Sub(now)
	if ttl < 24*time.Hour {
		ttl = 24 * time.Hour
	}
	return ttl
}
