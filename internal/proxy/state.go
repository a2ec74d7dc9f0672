package proxy

import (
	"path"
	"time"

	"golang.org/x/time/rate"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// Pricer prices usage and estimates requests; *pricing.Table implements it.
type Pricer interface {
	Known(model string) bool
	Cost(u meter.Usage, at time.Time) (pricing.Cost, error)
	Estimate(r pricing.Request, at time.Time) (money.Nanos, error)
	ContextWindow(model string) (int64, bool)
	EstimateSplit(r pricing.Request, at time.Time) (pricing.Split, error)
}

// State is one policy generation: the policy, the prices built from it and
// the per-service rate limiters. A reload builds a new State and swaps it in
// whole, so a request sees one consistent generation from start to end.
type State struct {
	Policy   *policy.Policy
	Prices   Pricer
	limiters map[string]*rate.Limiter
}

// NewState builds a State. Limiters of services whose rate limit did not
// change are carried over from prev, so a reload does not refill buckets.
func NewState(p *policy.Policy, prices Pricer, prev *State) *State {
	s := &State{Policy: p, Prices: prices, limiters: make(map[string]*rate.Limiter)}
	for name, svc := range p.Services {
		if svc.RateLimit == nil {
			continue
		}
		lim := rate.Limit(svc.RateLimit.RequestsPerSecond)
		if prev != nil {
			if old, ok := prev.limiters[name]; ok && old.Limit() == lim && old.Burst() == svc.RateLimit.Burst {
				s.limiters[name] = old
				continue
			}
		}
		s.limiters[name] = rate.NewLimiter(lim, svc.RateLimit.Burst)
	}
	return s
}

// allow takes one token from the service's bucket. It reports how long to
// wait when the bucket is empty.
func (s *State) allow(service string, now time.Time) (bool, time.Duration) {
	lim, ok := s.limiters[service]
	if !ok {
		return true, 0
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// modelAllowed reports whether svc may use model (its allowlist of globs).
func modelAllowed(svc *policy.Service, model string) bool {
	if len(svc.Models) == 0 {
		return true
	}
	for _, g := range svc.Models {
		if ok, _ := path.Match(g, model); ok {
			return true
		}
	}
	return false
}

// modelLabel bounds the model label to the models the price table knows.
func (s *State) modelLabel(model string) string {
	if model != "" && s.Prices.Known(model) {
		return model
	}
	return "other"
}
