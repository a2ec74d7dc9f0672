package app

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/notify"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// startNotifier runs the budget webhook notifier in the background. It
// does nothing until the policy names webhooks. It returns nil if it
// cannot run.
// Principals' budgets with alert_at thresholds are watched while this
// replica has admitted them recently; the shared claim still sends each
// crossing once across replicas.
func startNotifier(ctx context.Context, loops *sync.WaitGroup, cfg config, st store, rl *reloader, principals func() []budget.Budget, log *zap.Logger, reg prometheus.Registerer) *notify.Notifier {
	n, err := notify.New(notify.Config{
		Status:   st,
		Claims:   st,
		Budgets:  func() []budget.Budget { return append(rl.policy().AllBudgets(), principals()...) },
		Webhooks: func() []policy.Webhook { return rl.policy().Webhooks },
		Interval: cfg.NotifyInterval,
	}, notify.WithLogger(log), notify.WithRegisterer(reg),
		notify.WithHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}))
	if err != nil {
		log.Error("budget notifications disabled", zap.Error(err))
		return nil
	}
	loops.Go(func() { _ = n.Run(ctx) })
	return n
}
