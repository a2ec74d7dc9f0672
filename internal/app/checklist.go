package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/redisstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/redisurl"
	"github.com/clade-gateway/clade-gateway/internal/checklist"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/trail"
)

const checklistUsage = "usage: clade-gateway checklist [--format text|json] [PATH]"

// runChecklist is the checklist command: the policy at PATH (default
// CLADE_CONFIG) and, when CLADE_REDIS_URL or CLADE_DATA_DIR is set, the
// store's trail. It prints the report and fails when any item fails.
func runChecklist(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	format, path := "text", ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--format" && i+1 < len(args):
			format = args[i+1]
			i++
		case strings.HasPrefix(a, "--format="):
			format = strings.TrimPrefix(a, "--format=")
		case strings.HasPrefix(a, "-"):
			return fmt.Errorf("checklist: unknown flag %q\n%s", a, checklistUsage)
		case path != "":
			return fmt.Errorf("checklist takes at most one path\n%s", checklistUsage)
		default:
			path = a
		}
	}
	if format != "text" && format != "json" {
		return fmt.Errorf("checklist: --format must be text or json, not %q", format)
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	if path == "" {
		path = cfg.Config
	}
	p, err := policy.Load(path, policy.LoadOptions{Getenv: getenv, Now: time.Now})
	if err != nil {
		return fmt.Errorf("%s is invalid:\n%w", path, err)
	}
	opts, err := checklistOptions(cfg, time.Now)
	if err != nil {
		return err
	}
	live, closeLive := checklistLive(cfg, getenv)
	defer closeLive()
	opts.Live = live

	r := checklist.Evaluate(ctx, p, opts)
	if format == "json" {
		err = r.WriteJSON(out)
	} else {
		err = r.WriteText(out)
	}
	if err != nil {
		return err
	}
	if r.Failed() {
		return fmt.Errorf("checklist: %d of %d items fail", r.Summary.Fail, len(r.Items))
	}
	return nil
}

// checklistOptions are the facts outside the policy, the same for the
// command and for serve.
func checklistOptions(cfg config, now func() time.Time) (checklist.Options, error) {
	if cfg.ChecklistAdminTokenLimit <= 0 {
		return checklist.Options{}, errors.New("environment: CLADE_CHECKLIST_ADMIN_TOKEN_LIMIT must be a positive number")
	}
	return checklist.Options{Now: now, AdminTokenLimit: cfg.ChecklistAdminTokenLimit, AdminListen: cfg.AdminListen}, nil
}

// checklistLive opens the store read-only when the environment names one.
// CLADE_DATA_DIR counts only when set: its default is for serve. A store
// that cannot be opened makes the live items say why they were not checked.
func checklistLive(cfg config, getenv func(string) string) (checklist.Live, func()) {
	switch {
	case cfg.RedisURL != "":
		ro, err := redisurl.Parse(cfg.RedisURL)
		if err != nil {
			return unreadable{fmt.Errorf("CLADE_REDIS_URL: %w", err)}, func() {}
		}
		ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = cfg.StoreTimeout, cfg.StoreTimeout, cfg.StoreTimeout
		rdb := redis.NewUniversalClient(ro)
		return trail.Reader{Records: redisstore.NewRecordReader(rdb, cfg.RedisPrefix, cfg.StoreTimeout*4)}, func() { _ = rdb.Close() }
	case getenv("CLADE_DATA_DIR") != "":
		r, err := boltstore.OpenRecordReader(filepath.Join(cfg.DataDir, "budgets.db"))
		if err != nil {
			return unreadable{err}, func() {}
		}
		return trail.Reader{Records: r}, func() { _ = r.Close() }
	}
	return nil, func() {}
}

// unreadable is a store that could not be opened.
type unreadable struct{ err error }

func (u unreadable) LastUsed(context.Context) (map[[sha256.Size]byte]time.Time, time.Time, error) {
	return nil, time.Time{}, u.err
}

func (u unreadable) Adjustments(context.Context, time.Time) ([]trail.Adjustment, error) {
	return nil, u.err
}

// servedChecklist evaluates the running policy against the live store, for
// GET /admin/checklist and the metrics. It returns nil until a policy is
// loaded.
func servedChecklist(opts checklist.Options, pol func() *policy.Policy, rec trail.Lister) func(ctx context.Context) *checklist.Report {
	opts.Live = trail.Reader{Records: rec}
	return func(ctx context.Context) *checklist.Report {
		p := pol()
		if p == nil {
			return nil
		}
		return checklist.Evaluate(ctx, p, opts)
	}
}
