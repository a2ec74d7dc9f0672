package app

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
	"github.com/clade-gateway/clade-gateway/internal/proxy"
)

// reloader owns the running policy generation. A reload (SIGHUP, POST
// /admin/reload, or a change on disk) validates the whole new policy first;
// an invalid one is rejected whole and the running one stays.
type reloader struct {
	path    string
	getenv  func(string) string
	log     *zap.Logger
	base    *pricing.Table
	state   atomic.Pointer[proxy.State]
	mu      sync.Mutex // one reload at a time
	print   string     // fingerprint of the files last loaded
	reloads *prometheus.CounterVec
}

func newReloader(cfg config, getenv func(string) string, log *zap.Logger, reg prometheus.Registerer) (*reloader, error) {
	base, err := pricing.Default()
	if err != nil {
		return nil, fmt.Errorf("price table: %w", err)
	}
	rl := &reloader{path: cfg.Config, getenv: getenv, log: log.Named("policy"), base: base,
		reloads: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "clade_gateway_config_reloads_total",
			Help: "Policy reloads, by result (success or failure).",
		}, []string{"result"})}
	// Both series exist from the start, so increase() sees the first
	// failure (a series born at 1 shows no increase).
	rl.reloads.WithLabelValues("success")
	rl.reloads.WithLabelValues("failure")
	if err := rl.load(); err != nil {
		return nil, fmt.Errorf("policy %s:\n%w", cfg.Config, err)
	}
	return rl, nil
}

func (rl *reloader) current() *proxy.State { return rl.state.Load() }

func (rl *reloader) policy() *policy.Policy {
	if s := rl.state.Load(); s != nil {
		return s.Policy
	}
	return nil
}

func (rl *reloader) prices() proxy.Pricer { return rl.state.Load().Prices }

func (rl *reloader) load() error {
	print, _ := policy.Fingerprint(rl.path)
	p, err := policy.Load(rl.path, policy.LoadOptions{Getenv: rl.getenv, ResolveSecrets: true, Now: time.Now})
	if err != nil {
		return err
	}
	tbl, err := pricing.New(rl.base, p.Pricing)
	if err != nil {
		return fmt.Errorf("pricing: %w", err)
	}
	rl.state.Store(proxy.NewState(p, tbl, rl.state.Load()))
	rl.print = print
	return nil
}

// reload loads the policy again and swaps it in if it is valid.
func (rl *reloader) reload() error {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if err := rl.load(); err != nil {
		rl.reloads.WithLabelValues("failure").Inc()
		rl.log.Error("policy rejected; the running policy stays", zap.Error(err))
		return err
	}
	rl.reloads.WithLabelValues("success").Inc()
	p := rl.policy()
	rl.log.Info("policy reloaded", zap.Int("services", len(p.Services)), zap.Int("teams", len(p.Teams)))
	return nil
}

// watch reloads on SIGHUP and when the policy's files change on disk.
func (rl *reloader) watch(ctx context.Context, every time.Duration) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = rl.reload()
		case <-t.C:
			print, err := policy.Fingerprint(rl.path)
			rl.mu.Lock()
			changed := err == nil && print != rl.print
			rl.mu.Unlock()
			if changed {
				_ = rl.reload()
				rl.mu.Lock()
				rl.print = print // a broken file is reported once, not every poll
				rl.mu.Unlock()
			}
		}
	}
}
