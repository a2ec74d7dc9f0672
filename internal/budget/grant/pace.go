package grant

import (
	"math"
	"sync"
	"time"
)

// paceHalfLife is how fast a slow step is forgotten. Grants stay grown for
// about a minute after the store was last seen slow: a disk's slow fsyncs
// come in spells seconds apart, and a grant that had shrunk back between
// them made the requests of each spell's first slow step wait for it.
const paceHalfLife = 20 * time.Second

// stepPace is how long the store's grant steps take, recently. It is one
// per Granted, shared by its grants: they step on the same store (the
// same disk, for the embedded one), so a grant created after a slow step
// starts out grown instead of learning it by waiting.
//
// It runs on its own clock, the real one outside tests: steps are timed
// in real time whatever Options.Clock says.
type stepPace struct {
	now  func() time.Time
	mu   sync.Mutex
	took time.Duration
	at   time.Time
}

// note records a step that took d, ending now. A slow step counts at once;
// the figure then halves every paceHalfLife.
func (p *stepPace) note(d time.Duration) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.took, p.at = max(d, p.decayed(now)), now
}

// current is the figure as of now.
func (p *stepPace) current() time.Duration {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.decayed(now)
}

func (p *stepPace) decayed(now time.Time) time.Duration {
	if p.took == 0 {
		return 0
	}
	age := now.Sub(p.at)
	if age <= 0 {
		return p.took
	}
	return time.Duration(float64(p.took) * math.Exp2(-float64(age)/float64(paceHalfLife)))
}
