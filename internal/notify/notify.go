// Package notify posts budget threshold webhooks (Slack-compatible text or
// structured JSON) when a budget's committed spend crosses one of its
// alert_at fractions, and when an enforced budget is exhausted.
//
// It is off the request path entirely: a loop polls budget status every
// Config.Interval and deliveries run in their own goroutines. Every replica
// runs a notifier; a shared claim per (budget window, threshold) makes sure
// only one of them sends, once per window.
//
// Delivery is at most once: a claimed notification whose webhook keeps
// failing after every retry is dropped (and counted), because releasing the
// claim would let every replica retry it on every tick.
package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// StatusReader reads the current window of budgets. budget.Store satisfies it.
type StatusReader interface {
	Status(ctx context.Context, budgets []budget.Budget) ([]budget.Status, error)
}

// Claimer grants a key to exactly one caller until ttl passes (SET NX in
// Redis, a TTL'd bucket entry in bbolt).
type Claimer interface {
	ClaimNotification(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// ErrConfig reports a Config that cannot run.
var ErrConfig = errors.New("notify: invalid config")

// Exhausted is the threshold every enforced budget notifies at.
const Exhausted = 1.0

// totalClaimTTL bounds claims of budgets that never reset; long enough that
// a year-long total budget is not announced twice.
const totalClaimTTL = 400 * 24 * time.Hour

// Config says what to watch and where to send.
type Config struct {
	Status   StatusReader
	Claims   Claimer
	Budgets  func() []budget.Budget  // read each tick: follows policy reloads
	Webhooks func() []policy.Webhook // read each tick: follows policy reloads

	Interval    time.Duration // between status polls; default 15s
	Attempts    int           // tries per webhook delivery; default 5
	BaseBackoff time.Duration // wait after the first failure; default 1s, doubling
	MaxBackoff  time.Duration // cap on any wait; default 16s
	Timeout     time.Duration // per attempt; default 10s
}

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = 15 * time.Second
	}
	if c.Attempts <= 0 {
		c.Attempts = 5
	}
	if c.BaseBackoff <= 0 {
		c.BaseBackoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 16 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
}

// Option sets an injected dependency.
type Option func(*Notifier)

// WithLogger sets the logger (default: no logging).
func WithLogger(l *zap.Logger) Option { return func(n *Notifier) { n.log = l } }

// WithRegisterer sets where metrics are registered (default: a private registry).
func WithRegisterer(r prometheus.Registerer) Option { return func(n *Notifier) { n.reg = r } }

// WithClock sets the clock that picks budget windows (default time.Now).
func WithClock(now func() time.Time) Option { return func(n *Notifier) { n.now = now } }

// WithHTTPClient sets the client webhooks are posted with.
func WithHTTPClient(c *http.Client) Option { return func(n *Notifier) { n.client = c } }

// Notifier watches budgets and posts webhooks. Create it with New.
type Notifier struct {
	cfg     Config
	log     *zap.Logger
	reg     prometheus.Registerer
	now     func() time.Time
	client  *http.Client
	metrics *metrics

	wg sync.WaitGroup // in-flight deliveries
}

// New checks cfg, fills defaults and registers metrics.
func New(cfg Config, opts ...Option) (*Notifier, error) {
	var errs []error
	if cfg.Status == nil {
		errs = append(errs, fmt.Errorf("%w: Status is nil", ErrConfig))
	}
	if cfg.Claims == nil {
		errs = append(errs, fmt.Errorf("%w: Claims is nil", ErrConfig))
	}
	if cfg.Budgets == nil {
		errs = append(errs, fmt.Errorf("%w: Budgets is nil", ErrConfig))
	}
	if cfg.Webhooks == nil {
		errs = append(errs, fmt.Errorf("%w: Webhooks is nil", ErrConfig))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.defaults()
	n := &Notifier{
		cfg:    cfg,
		log:    zap.NewNop(),
		now:    time.Now,
		client: &http.Client{},
	}
	for _, o := range opts {
		o(n)
	}
	if n.reg == nil {
		n.reg = prometheus.NewRegistry()
	}
	n.log = n.log.Named("notify")
	m, err := newMetrics(n.reg)
	if err != nil {
		return nil, fmt.Errorf("notify: register metrics: %w", err)
	}
	n.metrics = m
	return n, nil
}

// Run checks budgets at once and then every Interval until ctx is done,
// then waits for in-flight deliveries (which stop retrying when ctx ends).
func (n *Notifier) Run(ctx context.Context) error {
	defer n.wg.Wait()
	t := time.NewTicker(n.cfg.Interval)
	defer t.Stop()
	for {
		if err := n.check(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("budget check failed", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// watched is a budget with the thresholds it notifies at, ascending.
type watched struct {
	b          budget.Budget
	thresholds []float64
}

// check reads every watched budget once and starts a delivery for each
// threshold this replica wins the claim for.
func (n *Notifier) check(ctx context.Context) error {
	hooks := n.cfg.Webhooks()
	if len(hooks) == 0 {
		// Claiming without sending would swallow the notification for the
		// rest of the window once a webhook is configured.
		return nil
	}
	var list []watched
	var budgets []budget.Budget
	for _, b := range n.cfg.Budgets() {
		if th := thresholds(b); len(th) > 0 {
			list = append(list, watched{b: b, thresholds: th})
			budgets = append(budgets, b)
		}
	}
	if len(budgets) == 0 {
		return nil
	}
	statuses, err := n.cfg.Status.Status(ctx, budgets)
	if err != nil {
		return fmt.Errorf("notify: read budget status: %w", err)
	}
	if len(statuses) != len(list) {
		return fmt.Errorf("notify: store returned %d statuses for %d budgets", len(statuses), len(list))
	}
	now := n.now()
	for i, st := range statuses {
		// Trust our own budget (thresholds, enforce) and the store's window.
		st.Budget = list[i].b
		for _, th := range list[i].thresholds {
			if !reached(st.Spent, st.Budget.Limit, th) {
				break // ascending: no higher threshold is reached either
			}
			key, ttl := claimKey(st, th, now)
			ok, err := n.cfg.Claims.ClaimNotification(ctx, key, ttl)
			if err != nil {
				n.log.Warn("claim notification failed",
					zap.String("budget", st.Budget.Label()), zap.Float64("threshold", th), zap.Error(err))
				continue // not claimed: the next tick tries again
			}
			if !ok {
				continue
			}
			ev := newEvent(st, th)
			for _, h := range hooks {
				n.wg.Add(1)
				go func() {
					defer n.wg.Done()
					n.deliver(ctx, h, ev)
				}()
			}
		}
	}
	return nil
}

// thresholds lists the fractions b notifies at: its alert_at values, plus
// exhaustion for an enforced budget. A budget with no positive limit is a
// deliberate block, not something to announce.
func thresholds(b budget.Budget) []float64 {
	if b.Limit <= 0 {
		return nil
	}
	var out []float64
	seen := map[float64]bool{}
	add := func(f float64) {
		if f > 0 && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, f := range b.AlertAt {
		add(f)
	}
	if b.Enforce {
		add(Exhausted)
	}
	sort.Float64s(out)
	return out
}

// claimKey names one threshold of one budget window, and how long the claim
// must outlive it so a late replica cannot send it again.
func claimKey(st budget.Status, th float64, now time.Time) (string, time.Duration) {
	b := st.Budget
	at := st.WindowStart
	if at.IsZero() {
		at = now
	}
	key := b.Key(at) + ":" + formatThreshold(th)
	if b.Period == budget.Total {
		return key, totalClaimTTL
	}
	end := st.ResetsAt
	if end.IsZero() {
		_, end = b.Window(at)
	}
	ttl := end.Sub(now) + 24*time.Hour
	if ttl < 24*time.Hour {
		ttl = 24 * time.Hour
	}
	return key, ttl
}

func formatThreshold(th float64) string { return strconv.FormatFloat(th, 'f', -1, 64) }
