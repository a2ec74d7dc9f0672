package reconcile

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"
)

// LoopStore is what the background loop needs of the budget store.
type LoopStore interface {
	LedgerReader
	ChargeStore
	TryLock(ctx context.Context, name string, ttl time.Duration) (bool, error)
}

// LoopOptions configure a Loop.
type LoopOptions struct {
	// Source is read at every run, so policy reloads and a rotated admin
	// key take effect.
	Source     func() (Source, error)
	Store      LoopStore
	Interval   time.Duration
	Clock      func() time.Time
	Logger     *zap.Logger
	Registerer prometheus.Registerer
	// OnUnmetered, when set, hears of each unmetered finding beyond the
	// tolerance (a webhook).
	OnUnmetered func(Finding)
}

// Loop reconciles the recent days every Interval, on one replica at a
// time (the store lease LockName), and exports what it found.
type Loop struct {
	o       LoopOptions
	drift   *prometheus.GaugeVec
	success prometheus.Gauge
	failed  prometheus.Counter
	mu      sync.Mutex
	told    map[string]bool // unmetered findings already passed to OnUnmetered
}

// NewLoop registers the loop's metrics.
func NewLoop(o LoopOptions) *Loop {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	o.Logger = o.Logger.Named("reconcile")
	f := promauto.With(o.Registerer)
	l := &Loop{o: o, told: map[string]bool{},
		drift: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "clade_gateway_reconcile_drift_usd",
			Help: "Absolute drift beyond tolerance found by the last reconciliation (closed days; unmetered spend on any day), by workspace and kind.",
		}, []string{"workspace", "kind"}),
		success: f.NewGauge(prometheus.GaugeOpts{
			Name: "clade_gateway_reconcile_last_success_timestamp_seconds",
			Help: "When this replica last reconciled successfully (its start time until then).",
		}),
		failed: f.NewCounter(prometheus.CounterOpts{
			Name: "clade_gateway_reconcile_failed_runs_total",
			Help: "Reconciliation runs that failed (Admin API, store or policy).",
		}),
	}
	// Until a first success, "failing for hours" counts from the start.
	l.success.Set(float64(o.Clock().Unix()))
	return l
}

// Run reconciles now and then every Interval until ctx ends.
func (l *Loop) Run(ctx context.Context) {
	t := time.NewTicker(l.o.Interval)
	defer t.Stop()
	for {
		if err := l.Once(ctx); err != nil && ctx.Err() == nil {
			l.o.Logger.Warn("reconciliation failed", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once runs one reconciliation if this replica holds the lease.
func (l *Loop) Once(ctx context.Context) error {
	ok, err := l.o.Store.TryLock(ctx, LockName, l.o.Interval+5*time.Minute)
	if err != nil {
		l.failed.Inc()
		return fmt.Errorf("reconcile lease: %w", err)
	}
	if !ok {
		// Another replica reconciles and exports the drift.
		l.drift.Reset()
		return nil
	}
	rep, err := l.run(ctx)
	if err != nil {
		l.failed.Inc()
		return err
	}
	l.success.Set(float64(l.o.Clock().Unix()))
	l.o.Logger.Info("reconciled", zap.String("from", rep.From), zap.String("to", rep.To),
		zap.Int("findings", len(rep.Findings)), zap.Bool("beyond_tolerance", rep.Failed()))
	return nil
}

func (l *Loop) run(ctx context.Context) (Report, error) {
	src, err := l.o.Source()
	if err != nil {
		return Report{}, err
	}
	now := l.o.Clock()
	from, to := DefaultRange(now)
	rep, err := Run(ctx, src, from, to, now)
	if err != nil {
		return Report{}, err
	}
	l.export(src, rep)
	if src.Policy.Reconcile.ChargeUnmetered {
		if _, err := ChargeUnmetered(ctx, l.o.Store, src.Policy, rep, now, l.o.Logger); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func (l *Loop) export(src Source, rep Report) {
	l.drift.Reset()
	for name, ws := range src.Policy.Workspaces {
		if ws.AnthropicID == "" {
			continue
		}
		for _, k := range Kinds {
			l.drift.WithLabelValues(name, k)
		}
	}
	for _, f := range rep.Findings {
		if !f.Counts() {
			continue
		}
		d := float64(f.DriftUSD) / 1e9
		if d < 0 {
			d = -d
		}
		l.drift.WithLabelValues(f.Workspace, f.Kind).Add(d)
		if f.Kind == Unmetered && l.o.OnUnmetered != nil {
			id := f.Date + "|" + f.Workspace + "|" + f.Key + "|" + f.Model + "|" + f.DriftUSD.String()
			l.mu.Lock()
			fresh := !l.told[id]
			l.told[id] = true
			l.mu.Unlock()
			if fresh {
				l.o.OnUnmetered(f)
			}
		}
	}
}
