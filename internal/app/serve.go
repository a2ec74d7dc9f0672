package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/clade-gateway/clade-gateway/internal/admin"
	"github.com/clade-gateway/clade-gateway/internal/batch"
	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/grant"
	"github.com/clade-gateway/clade-gateway/internal/budget/journal"
	"github.com/clade-gateway/clade-gateway/internal/budget/redisstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/redisurl"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/checklist"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/notify"
	"github.com/clade-gateway/clade-gateway/internal/owner"
	"github.com/clade-gateway/clade-gateway/internal/promtable"
	"github.com/clade-gateway/clade-gateway/internal/proxy"
	"github.com/clade-gateway/clade-gateway/internal/reconcile"
	"github.com/clade-gateway/clade-gateway/internal/spend"
	"github.com/clade-gateway/clade-gateway/internal/trail"
)

// store is what the gateway needs of a budget store.
type store interface {
	proxy.Budgeter
	admin.Store
	admin.OwnerLister
	budget.Store
	batch.Records
	notify.Claimer
	// Ledger reads the spend ledger (reconciliation).
	Ledger(ctx context.Context, from, to time.Time) ([]budget.LedgerLine, error)
}

func serve(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	ops, err := newLogger(cfg.LogLevel, cfg.LogFormat, stderr, cfg.LogFlush)
	if err != nil {
		return err
	}
	defer ops.stop()
	log := ops.Logger
	spendLog, closeSpend, err := newSpendLogger(cfg.SpendLog, stdout, cfg.LogFlush)
	if err != nil {
		return err
	}
	defer closeSpend()

	// Thousands of services and budgets make tens of thousands of series:
	// the largest families are promtable Tables, which this registry
	// gathers without collecting them series by series.
	reg := promtable.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	release, err := lockDataDir(cfg.DataDir, cfg.Listen, time.Now())
	if err != nil {
		return err
	}
	defer release()
	// The journal is opened first and closed last: closing the store
	// journals what its grants could not return.
	jnl, err := journal.Open(filepath.Join(cfg.DataDir, "journal.db"))
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer func() {
		if err := jnl.Close(); err != nil {
			log.Error("journal close failed: entries written since its last sync may be lost", zap.Error(err))
		}
	}()
	if err := jnl.Register(reg); err != nil {
		return fmt.Errorf("journal metrics: %w", err)
	}
	st, err := openStore(ctx, cfg, reg, log, jnl)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("store close failed", zap.Error(err))
		}
	}()

	rl, err := newReloader(cfg, getenv, log, reg)
	if err != nil {
		return err
	}

	clOpts, err := checklistOptions(cfg, time.Now)
	if err != nil {
		return err
	}
	lastUsed := trail.NewLastUsed(st, time.Now, log.Named("trail"))
	tracker := batch.NewTracker(st)
	spendRec := spend.New(reg, spendLog, time.Now)
	h, err := proxy.New(proxy.Options{
		Upstream: cfg.upstream, PublicURL: cfg.publicURL,
		State: rl.current, Budget: st, Journal: jnl, Batches: tracker, Files: owner.NewFiles(st),
		Logger: log, RequestLog: ops.requestLines, Spend: spendRec, Registerer: reg,
		Transport: upstreamTransport(cfg), HoldTTL: cfg.HoldTTL, MaxBodyBytes: cfg.MaxBodyBytes,
		MaxBatchBodyBytes: cfg.MaxBatchBodyBytes, BodyReadTimeout: cfg.BodyReadTimeout, BodyIdleTimeout: cfg.BodyIdleTimeout,
		TokensUsed: lastUsed,
	})
	if err != nil {
		return err
	}
	reg.MustRegister(budgetGauges(st, rl.current, cfg.StoreTimeout*4))
	reg.MustRegister(newKeyAgeCollector(rl.current, time.Now))
	evalChecklist := servedChecklist(clOpts, rl.policy, st)
	reg.MustRegister(checklist.NewCollector(evalChecklist, cfg.StoreTimeout*4))

	// Background loops run on bg and are joined in loops, so that shutdown
	// ends them all before the store and the journal close (deferred above).
	bg, bgCancel := context.WithCancel(context.Background())
	var loops sync.WaitGroup
	defer func() { bgCancel(); loops.Wait() }()
	notifier := startNotifier(bg, &loops, cfg, st, rl, h.PrincipalAlertBudgets, log, reg)
	adminH := admin.New(admin.Options{
		Policy: rl.policy, Store: st, Reload: rl.reload, Gatherer: reg, Registerer: reg, Logger: log, Timeout: cfg.StoreTimeout * 4,
		Checklist: evalChecklist, Adjustments: trail.AdjustmentLog{Records: st, Now: time.Now},
		Routes: map[string]http.HandlerFunc{"GET /admin/reconcile": startReconciler(bg, &loops, cfg, st, rl, getenv, notifier, log, reg)},
	})
	api := &http.Server{Addr: cfg.Listen, Handler: h, ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout: 120 * time.Second, MaxHeaderBytes: 1 << 20, ErrorLog: zap.NewStdLog(log.Named("http"))}
	adm := &http.Server{Addr: cfg.AdminListen, Handler: adminH, ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ErrorLog: zap.NewStdLog(log.Named("admin-http"))}

	apiLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	admLn, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		_ = apiLn.Close()
		return fmt.Errorf("admin listen %s: %w", cfg.AdminListen, err)
	}
	log.Info("clade-gateway serving", zap.String("version", Version), zap.String("listen", apiLn.Addr().String()),
		zap.String("admin_listen", admLn.Addr().String()), zap.String("upstream", cfg.upstream.Redacted()),
		zap.String("store", storeKind(cfg)))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ignoreClosed(api.Serve(apiLn)) })
	g.Go(func() error { return ignoreClosed(adm.Serve(admLn)) })
	loops.Go(func() { rl.watch(bg, cfg.PolicyPollInterval) })
	loops.Go(func() { jnl.Run(bg, st, cfg.JournalReplay) })
	poller := batch.NewPoller(batch.PollerOptions{
		Tracker: tracker, Store: st, Upstream: cfg.upstream, Transport: upstreamTransport(cfg),
		Policy: rl.policy, Prices: func() batch.Pricer { return rl.prices() }, Logger: log, Spend: spendRec, Interval: cfg.BatchPollInterval,
	})
	loops.Go(func() { poller.Run(bg) })
	loops.Go(func() { lastUsed.Run(bg) })

	<-gctx.Done()
	log.Info("shutting down; waiting for in-flight requests", zap.Duration("grace", cfg.ShutdownGrace))
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := api.Shutdown(sctx); err != nil {
		log.Warn("grace period over; closing remaining connections", zap.Error(err))
		_ = api.Close()
	}
	h.Wait() // settlements of responses that just ended
	_ = adm.Close()
	// Shutdown order: listeners drained, settlements of ended responses
	// done, then the background loops (the last-use writer flushes its
	// queue), then, deferred, the store (grants return) and the journal.
	bgCancel()
	loops.Wait()
	if err := g.Wait(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func storeKind(cfg config) string {
	if cfg.RedisURL == "" {
		return "embedded"
	}
	return "redis"
}

func openStore(ctx context.Context, cfg config, reg prometheus.Registerer, log *zap.Logger, jnl *journal.Journal) (store, error) {
	opts := storeopts.Options{Timeout: cfg.StoreTimeout, Registerer: reg, Prefix: cfg.RedisPrefix, Logger: log,
		LedgerRetention: cfg.LedgerRetention}
	if cfg.RedisURL == "" {
		s, err := boltstore.Open(filepath.Join(cfg.DataDir, "budgets.db"), opts)
		if err != nil {
			return nil, fmt.Errorf("embedded store: %w", err)
		}
		if cfg.GrantWindow == 0 {
			return s, nil
		}
		g, err := grant.New(s, grantOptions(cfg, jnl))
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("grants: %w", err)
		}
		return granted{backend: s, g: g}, nil
	}
	ro, err := redisurl.Parse(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("CLADE_REDIS_URL: %w", err)
	}
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = cfg.StoreTimeout, cfg.StoreTimeout, cfg.StoreTimeout
	// One dial attempt per call: the store timeout bounds the call anyway,
	// and retrying a dead server only delays the refusal.
	ro.DialerRetries = 1
	// Every request makes two store calls; go-redis's default pool (10 per
	// CPU) makes a burst of new streams queue for a connection until the
	// store timeout refuses them while Redis idles (the bench's 2,500/s
	// ramp: 85% refused at 20 connections, 8% at 256). The URL's pool_size
	// still wins.
	if ro.PoolSize == 0 {
		ro.PoolSize = 256
	}
	// RESP2 unless the URL asks otherwise: the budget scripts need nothing
	// from RESP3, and its push-notification check costs CPU on every reply.
	if ro.Protocol == 0 {
		ro.Protocol = 2
	}
	// go-redis logs through a process-wide hook; send it to zap so the
	// logs stay JSON.
	redis.SetLogger(redisLogger{l: log.Named("redis"), repeats: newRepeats(time.Now, repeatWindow)})
	// The epoch file lets a restarted gateway notice a Redis that came
	// back empty; it is Redis's alone, not the embedded store's.
	opts.EpochFile = filepath.Join(cfg.DataDir, "redis-epoch")
	rdb := redis.NewUniversalClient(ro)
	s, err := redisstore.New(rdb, opts)
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis store: %w", err)
	}
	if cfg.GrantWindow == 0 {
		return closingStore{backend: s, rdb: rdb}, nil
	}
	g, err := grant.New(s, grantOptions(cfg, jnl))
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("grants: %w", err)
	}
	return closingStore{backend: granted{backend: s, g: g}, rdb: rdb}, nil
}

// backend is a store as the gateway uses it, either one, with or without
// grants.
type backend interface {
	store
	batch.Records
	Reinit(ctx context.Context) error
	// CloseGrant lets the journal's replay, which asserts for it, apply
	// grants an earlier process journaled, with or without grants now.
	CloseGrant(ctx context.Context, c grant.Closing) error
	TryLock(ctx context.Context, name string, ttl time.Duration) (bool, error)
}

var (
	_ backend = (*redisstore.Store)(nil)
	_ backend = (*boltstore.Store)(nil)
	_ backend = granted{}
	_ backend = closingStore{}
	// The reconciler asserts for it (startReconciler).
	_ reconcile.LoopStore = granted{}
)

// grantOptions are the admission grants of CLADE_GRANT_WINDOW, on either
// store.
func grantOptions(cfg config, jnl *journal.Journal) grant.Options {
	return grant.Options{Window: cfg.GrantWindow, Lease: cfg.HoldTTL, Journal: jnl}
}

// granted is a store admitting through grants: admission, settlement,
// journaled grants and Close are the grants', everything else the store's.
type granted struct {
	backend
	g *grant.Granted
}

func (s granted) Reserve(ctx context.Context, h budget.Hold) (budget.Reservation, error) {
	return s.g.Reserve(ctx, h)
}

func (s granted) Extend(ctx context.Context, r budget.Reservation, ttl time.Duration) error {
	return s.g.Extend(ctx, r, ttl)
}

func (s granted) Settle(ctx context.Context, r budget.Reservation, actual money.Nanos) error {
	return s.g.Settle(ctx, r, actual)
}

func (s granted) CloseGrant(ctx context.Context, c grant.Closing) error {
	return s.g.CloseGrant(ctx, c)
}

// Close returns the grants' unused amounts, then closes the store.
func (s granted) Close() error { return s.g.Close() }

func upstreamTransport(cfg config) *http.Transport {
	t := proxy.NewTransport()
	if cfg.proxyURL != nil {
		t.Proxy = http.ProxyURL(cfg.proxyURL)
	}
	return t
}

// closingStore closes the Redis client the gateway opened after the store
// (which waits for its background releases) is closed.
type closingStore struct {
	backend
	rdb redis.UniversalClient
}

func (c closingStore) Close() error {
	err := c.backend.Close()
	if cerr := c.rdb.Close(); err == nil {
		err = cerr
	}
	return err
}

// redisLogger adapts zap to go-redis's logging hook, holding back
// identical lines (see repeats).
type redisLogger struct {
	l       *zap.Logger
	repeats *repeats
}

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	ok, suppressed := r.repeats.admit(msg)
	if !ok {
		return
	}
	if suppressed > 0 {
		r.l.Warn(msg, zap.Int("suppressed_repeats", suppressed), zap.Duration("suppressed_within", r.repeats.window))
		return
	}
	r.l.Warn(msg)
}
