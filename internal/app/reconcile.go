package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/adminapi"
	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/redisstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/redisurl"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
	"github.com/clade-gateway/clade-gateway/internal/reconcile"
)

// exitFindings is the reconcile command's exit status when a finding is
// beyond tolerance.
const exitFindings = 3

// reconcileStore is what reconciliation needs of the budget store.
type reconcileStore interface {
	reconcile.LedgerReader
	reconcile.ChargeStore
	TryLock(ctx context.Context, name string, ttl time.Duration) (bool, error)
}

// reconcileCmd runs one reconciliation and prints it.
func reconcileCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fromS := fs.String("from", "", "first UTC day, YYYY-MM-DD (default: 7 days ago)")
	toS := fs.String("to", "", "last UTC day, YYYY-MM-DD (default: today)")
	format := fs.String("format", "table", "table or json")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("reconcile: %w (usage: reconcile [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--format table|json])", err)
	}
	if fs.NArg() > 0 || (*format != "table" && *format != "json") {
		return errors.New("reconcile: usage: reconcile [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--format table|json]")
	}
	now := time.Now()
	from, to := reconcile.DefaultRange(now)
	var err error
	if *fromS != "" {
		if from, err = reconcile.ParseDay(*fromS); err != nil {
			return fmt.Errorf("reconcile: --from %w", err)
		}
	}
	if *toS != "" {
		if to, err = reconcile.ParseDay(*toS); err != nil {
			return fmt.Errorf("reconcile: --to %w", err)
		}
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	// Workspace keys are not needed to read reports: only the admin key.
	pol, err := policy.Load(cfg.Config, policy.LoadOptions{Getenv: getenv, Now: time.Now})
	if err != nil {
		return fmt.Errorf("policy %s:\n%w", cfg.Config, err)
	}
	prices, err := policyPrices(pol)
	if err != nil {
		return err
	}
	reports, err := adminReports(cfg, pol, getenv)
	if err != nil {
		return err
	}
	st, closeStore, err := openLedgerStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	rep, err := reconcile.Run(ctx, reconcile.Source{Policy: pol, Prices: prices, Ledger: st, Reports: reports}, from, to, now)
	if err != nil {
		return err
	}
	if pol.Reconcile.ChargeUnmetered {
		log := zap.NewNop()
		// A one-shot command: each line written at once.
		if l, lerr := newLogger("info", "json", os.Stderr, 0); lerr == nil {
			log = l.Logger
		}
		switch ok, err := st.TryLock(ctx, reconcile.LockName, time.Minute); {
		case err != nil:
			return fmt.Errorf("reconcile: unmetered spend not charged: %w", err)
		case !ok:
			log.Warn("unmetered spend not charged here: a gateway is reconciling in the background and charges it")
		default:
			_, err := reconcile.ChargeUnmetered(ctx, st, pol, rep, now, log)
			// Renewing the lease for a millisecond hands it back.
			_, _ = st.TryLock(ctx, reconcile.LockName, time.Millisecond)
			if err != nil {
				return fmt.Errorf("reconcile: %w", err)
			}
		}
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = reconcile.WriteTable(stdout, rep)
	}
	if err != nil {
		return err
	}
	if rep.Failed() {
		return &ExitError{Code: exitFindings}
	}
	return nil
}

func policyPrices(pol *policy.Policy) (*pricing.Table, error) {
	base, err := pricing.Default()
	if err != nil {
		return nil, fmt.Errorf("price table: %w", err)
	}
	t, err := pricing.New(base, pol.Pricing)
	if err != nil {
		return nil, fmt.Errorf("pricing: %w", err)
	}
	return t, nil
}

// adminReports returns a client of the Admin API, reading the admin key
// now: only a process that reconciles needs it.
func adminReports(cfg config, pol *policy.Policy, getenv func(string) string) (*adminapi.Client, error) {
	if !pol.Reconcile.Enabled() {
		return nil, errors.New("reconcile: the policy has no reconcile.admin_key")
	}
	key, err := pol.Reconcile.AdminKey.Resolve(getenv, os.ReadFile)
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	c, err := adminapi.New(adminapi.Options{BaseURL: cfg.AdminAPIURL, Key: string(key)})
	if err != nil {
		return nil, fmt.Errorf("reconcile: CLADE_ADMIN_API_URL: %w", err)
	}
	return c, nil
}

// openLedgerStore opens the budget store to read the ledger and charge
// findings, without grants or metrics. The embedded store's file is held
// by a running gateway: then its admin endpoint GET /admin/reconcile is
// the way.
func openLedgerStore(ctx context.Context, cfg config) (reconcileStore, func(), error) {
	opts := storeopts.Options{Timeout: 10 * cfg.StoreTimeout, Prefix: cfg.RedisPrefix}
	if cfg.RedisURL == "" {
		s, err := boltstore.Open(filepath.Join(cfg.DataDir, "budgets.db"), opts)
		if err != nil {
			return nil, nil, fmt.Errorf("reconcile: embedded store (a running gateway holds it: use its GET /admin/reconcile): %w", err)
		}
		return s, func() { _ = s.Close() }, nil
	}
	ro, err := redisurl.Parse(cfg.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("CLADE_REDIS_URL: %w", err)
	}
	rdb := redis.NewUniversalClient(ro)
	s, err := redisstore.New(rdb, opts)
	if err != nil {
		_ = rdb.Close()
		return nil, nil, fmt.Errorf("reconcile: redis store: %w", err)
	}
	return s, func() { _ = s.Close(); _ = rdb.Close() }, nil
}

// reconcileSummary tells check-config's reader what reconciliation will
// compare: workspaces and keys without an Anthropic ID are left out.
func reconcileSummary(out io.Writer, p *policy.Policy) error {
	if !p.Reconcile.Enabled() {
		return nil
	}
	src := "environment variable " + p.Reconcile.AdminKey.Env
	if p.Reconcile.AdminKey.File != "" {
		src = "file " + p.Reconcile.AdminKey.File
	}
	var missing []string
	compared := 0
	for _, name := range sortedNames(p.Workspaces) {
		ws := p.Workspaces[name]
		if ws.AnthropicID == "" {
			missing = append(missing, "workspace "+name)
			continue
		}
		compared++
		for _, k := range ws.Keys {
			if k.AnthropicID == "" {
				missing = append(missing, "key "+name+"/"+k.Name)
			}
		}
	}
	if _, err := fmt.Fprintf(out, "reconcile: on (admin key from %s), %d workspaces compared\n", src, compared); err != nil {
		return err
	}
	for _, m := range missing {
		if _, err := fmt.Fprintf(out, "reconcile: %s has no anthropic_id: its spend cannot be matched\n", m); err != nil {
			return err
		}
	}
	return nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
