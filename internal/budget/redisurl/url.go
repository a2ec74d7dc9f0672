// Package redisurl parses the Redis URLs the gateway is configured with:
// one server, Sentinel or Cluster, with or without TLS.
package redisurl

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/redis/go-redis/v9"
)

// Parse turns CLADE_REDIS_URL into options for
// redis.NewUniversalClient. Accepted forms:
//
//	redis://[user:pass@]host:port[/db][?opts]      one server (rediss:// for TLS);
//	                                               opts as go-redis ParseURL
//	redis-sentinel://[user:pass@]host:port[,host:port...]/mastername[?db=N&sentinel_username=U&sentinel_password=P]
//	                                               Sentinel; user:pass are the data
//	                                               nodes' credentials (rediss-sentinel:// for TLS)
//	redis-cluster://[user:pass@]host:port[,host:port...]
//	                                               Cluster seed nodes (rediss-cluster:// for TLS)
//
// Every form sets ContextTimeoutEnabled, which redisstore.New requires so
// that the store's timeout bounds each call.
func Parse(raw string) (*redis.UniversalOptions, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("%w: Redis URL has no scheme", budget.ErrInvalid)
	}
	var o *redis.UniversalOptions
	var err error
	switch scheme {
	case "redis", "rediss":
		o, err = parseSingleURL(raw)
	case "redis-sentinel", "rediss-sentinel":
		o, err = parseMultiURL(rest, scheme == "rediss-sentinel", true)
	case "redis-cluster", "rediss-cluster":
		o, err = parseMultiURL(rest, scheme == "rediss-cluster", false)
		if o != nil {
			o.IsClusterMode = true
		}
	default:
		return nil, fmt.Errorf("%w: Redis URL scheme %q (want redis, rediss, redis-sentinel or redis-cluster)", budget.ErrInvalid, scheme)
	}
	if err != nil {
		// The URL may hold a password: never echo it.
		return nil, fmt.Errorf("%w: Redis URL: %s", budget.ErrInvalid, redactURLError(err))
	}
	o.ContextTimeoutEnabled = true
	return o, nil
}

func parseSingleURL(raw string) (*redis.UniversalOptions, error) {
	p, err := redis.ParseURL(raw)
	if err != nil {
		return nil, err
	}
	return &redis.UniversalOptions{
		Addrs:           []string{p.Addr},
		ClientName:      p.ClientName,
		DB:              p.DB,
		Protocol:        p.Protocol,
		Username:        p.Username,
		Password:        p.Password,
		MaxRetries:      p.MaxRetries,
		MinRetryBackoff: p.MinRetryBackoff,
		MaxRetryBackoff: p.MaxRetryBackoff,
		DialTimeout:     p.DialTimeout,
		ReadTimeout:     p.ReadTimeout,
		WriteTimeout:    p.WriteTimeout,
		PoolFIFO:        p.PoolFIFO,
		PoolSize:        p.PoolSize,
		PoolTimeout:     p.PoolTimeout,
		MinIdleConns:    p.MinIdleConns,
		MaxIdleConns:    p.MaxIdleConns,
		MaxActiveConns:  p.MaxActiveConns,
		ConnMaxIdleTime: p.ConnMaxIdleTime,
		ConnMaxLifetime: p.ConnMaxLifetime,
		TLSConfig:       p.TLSConfig,
	}, nil
}

// parseMultiURL reads "[user:pass@]h:p,h:p[/path][?query]" after the scheme.
func parseMultiURL(rest string, useTLS, sentinel bool) (*redis.UniversalOptions, error) {
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	o := &redis.UniversalOptions{}
	defaultPort := ":6379"
	if sentinel {
		defaultPort = ":26379"
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		u, err := url.Parse("x://" + authority[:i+1] + "h")
		if err != nil || u.User == nil {
			return nil, fmt.Errorf("malformed credentials")
		}
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
		authority = authority[i+1:]
	}
	for _, h := range strings.Split(authority, ",") {
		if h == "" {
			continue
		}
		if !strings.Contains(h, ":") {
			h += defaultPort
		}
		o.Addrs = append(o.Addrs, h)
	}
	if len(o.Addrs) == 0 {
		return nil, fmt.Errorf("no hosts")
	}
	path, query, _ := strings.Cut(tail, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("malformed query")
	}
	path = strings.Trim(path, "/")
	if sentinel {
		if path == "" || strings.Contains(path, "/") {
			return nil, fmt.Errorf("redis-sentinel URL needs exactly one master name as its path")
		}
		o.MasterName = path
		o.SentinelUsername = q.Get("sentinel_username")
		o.SentinelPassword = q.Get("sentinel_password")
		if db := q.Get("db"); db != "" {
			if o.DB, err = strconv.Atoi(db); err != nil {
				return nil, fmt.Errorf("invalid db %q", db)
			}
		}
	} else if path != "" {
		return nil, fmt.Errorf("redis-cluster URL takes no path (Cluster has only db 0)")
	}
	for k := range q {
		switch k {
		case "db", "sentinel_username", "sentinel_password":
			if sentinel {
				continue
			}
		}
		return nil, fmt.Errorf("unknown option %q", k)
	}
	if useTLS {
		host, _, _ := strings.Cut(o.Addrs[0], ":")
		o.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return o, nil
}

// redactURLError keeps a parse error's message without any URL text, which
// may include a password.
func redactURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	msg := err.Error()
	if strings.Contains(msg, "@") {
		return "malformed URL"
	}
	return msg
}
