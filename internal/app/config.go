package app

import (
	"fmt"
	"net/url"
	"reflect"
	"time"

	"github.com/caarlos0/env/v11"
)

// config is the process configuration. Every tunable is an environment
// variable with a documented default (docs/configuration.md).
type config struct {
	Listen             string        `env:"CLADE_LISTEN" envDefault:"127.0.0.1:8080"`
	AdminListen        string        `env:"CLADE_ADMIN_LISTEN" envDefault:"127.0.0.1:9090"`
	Config             string        `env:"CLADE_CONFIG" envDefault:"clade.yaml"`
	UpstreamURL        string        `env:"CLADE_UPSTREAM_URL" envDefault:"https://api.anthropic.com"`
	UpstreamProxy      string        `env:"CLADE_UPSTREAM_PROXY"`
	PublicURL          string        `env:"CLADE_PUBLIC_URL"`
	RedisURL           string        `env:"CLADE_REDIS_URL"`
	RedisPrefix        string        `env:"CLADE_REDIS_PREFIX" envDefault:"clade"`
	DataDir            string        `env:"CLADE_DATA_DIR" envDefault:"./data"`
	LogLevel           string        `env:"CLADE_LOG_LEVEL" envDefault:"info"`
	LogFormat          string        `env:"CLADE_LOG_FORMAT" envDefault:"json"`
	SpendLog           string        `env:"CLADE_SPEND_LOG" envDefault:"stdout"`
	LogFlush           time.Duration `env:"CLADE_LOG_FLUSH_INTERVAL" envDefault:"100ms"`
	ReadHeaderTimeout  time.Duration `env:"CLADE_READ_HEADER_TIMEOUT" envDefault:"10s"`
	ShutdownGrace      time.Duration `env:"CLADE_SHUTDOWN_GRACE" envDefault:"30s"`
	PolicyPollInterval time.Duration `env:"CLADE_POLICY_POLL_INTERVAL" envDefault:"5s"`
	HoldTTL            time.Duration `env:"CLADE_HOLD_TTL" envDefault:"60s"`
	StoreTimeout       time.Duration `env:"CLADE_STORE_TIMEOUT" envDefault:"500ms"`
	BatchPollInterval  time.Duration `env:"CLADE_BATCH_POLL_INTERVAL" envDefault:"60s"`
	JournalReplay      time.Duration `env:"CLADE_JOURNAL_REPLAY_INTERVAL" envDefault:"5s"`
	NotifyInterval     time.Duration `env:"CLADE_NOTIFY_INTERVAL" envDefault:"15s"`
	MaxBodyBytes       int64         `env:"CLADE_MAX_BODY_BYTES" envDefault:"33554432"`
	MaxBatchBodyBytes  int64         `env:"CLADE_MAX_BATCH_BODY_BYTES" envDefault:"268435456"`
	BodyReadTimeout    time.Duration `env:"CLADE_BODY_READ_TIMEOUT" envDefault:"60s"`
	BodyIdleTimeout    time.Duration `env:"CLADE_BODY_IDLE_TIMEOUT" envDefault:"10s"`
	AdminAPIURL        string        `env:"CLADE_ADMIN_API_URL" envDefault:"https://api.anthropic.com"`
	ReconcileInterval  time.Duration `env:"CLADE_RECONCILE_INTERVAL" envDefault:"1h"`
	LedgerRetention    time.Duration `env:"CLADE_LEDGER_RETENTION" envDefault:"9600h"`
	GrantWindow        time.Duration `env:"CLADE_GRANT_WINDOW" envDefault:"100ms"`
	// ChecklistAdminTokenLimit: the checklist fails when the policy lists
	// this many admin tokens or more.
	ChecklistAdminTokenLimit int `env:"CLADE_CHECKLIST_ADMIN_TOKEN_LIMIT" envDefault:"4"`

	upstream  *url.URL
	publicURL *url.URL
	proxyURL  *url.URL
}

func loadConfig(getenv func(string) string) (config, error) {
	var c config
	if err := env.ParseWithOptions(&c, env.Options{Environment: environ(getenv)}); err != nil {
		return c, envErrors(err, getenv)
	}
	if err := oneOf("CLADE_LOG_FORMAT", c.LogFormat, "json", "console"); err != nil {
		return c, err
	}
	if err := oneOf("CLADE_LOG_LEVEL", c.LogLevel, "debug", "info", "warn", "error"); err != nil {
		return c, err
	}
	var err error
	if c.upstream, err = parseHTTPURL("CLADE_UPSTREAM_URL", c.UpstreamURL); err != nil {
		return c, err
	}
	if c.PublicURL != "" {
		if c.publicURL, err = parseHTTPURL("CLADE_PUBLIC_URL", c.PublicURL); err != nil {
			return c, err
		}
	}
	if _, err := parseHTTPURL("CLADE_ADMIN_API_URL", c.AdminAPIURL); err != nil {
		return c, err
	}
	if c.UpstreamProxy != "" {
		if c.proxyURL, err = parseHTTPURL("CLADE_UPSTREAM_PROXY", c.UpstreamProxy); err != nil {
			return c, err
		}
	}
	for name, d := range map[string]time.Duration{"CLADE_HOLD_TTL": c.HoldTTL, "CLADE_STORE_TIMEOUT": c.StoreTimeout,
		"CLADE_POLICY_POLL_INTERVAL": c.PolicyPollInterval, "CLADE_BATCH_POLL_INTERVAL": c.BatchPollInterval,
		"CLADE_READ_HEADER_TIMEOUT": c.ReadHeaderTimeout, "CLADE_BODY_READ_TIMEOUT": c.BodyReadTimeout,
		"CLADE_BODY_IDLE_TIMEOUT": c.BodyIdleTimeout, "CLADE_RECONCILE_INTERVAL": c.ReconcileInterval,
		"CLADE_LEDGER_RETENTION": c.LedgerRetention} {
		if d <= 0 {
			return c, fmt.Errorf("environment: %s must be a positive duration", name)
		}
	}
	if c.LogFlush < 0 {
		return c, fmt.Errorf("environment: CLADE_LOG_FLUSH_INTERVAL must be a positive duration, or 0 (each line written at once)")
	}
	if c.GrantWindow < 0 {
		return c, fmt.Errorf("environment: CLADE_GRANT_WINDOW must be a positive duration, or 0 (off)")
	}
	if c.MaxBodyBytes <= 0 {
		return c, fmt.Errorf("environment: CLADE_MAX_BODY_BYTES must be positive")
	}
	if c.MaxBatchBodyBytes <= 0 {
		return c, fmt.Errorf("environment: CLADE_MAX_BATCH_BODY_BYTES must be positive")
	}
	return c, nil
}

func parseHTTPURL(name, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("environment: %s must be an http(s) URL, got %q", name, s)
	}
	return u, nil
}

// environ turns a getenv function into the map env/v11 reads, for the
// variables the config struct declares.
func environ(getenv func(string) string) map[string]string {
	m := map[string]string{}
	t := reflect.TypeFor[config]()
	for i := 0; i < t.NumField(); i++ {
		if k := t.Field(i).Tag.Get("env"); k != "" {
			if v := getenv(k); v != "" {
				m[k] = v
			}
		}
	}
	return m
}
