package redisurl

import (
	"errors"
	"strings"
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"
)

func TestParseRedisURL(t *testing.T) {
	cases := []struct {
		url  string
		want redis.UniversalOptions
		tls  string // expected TLS server name, "" for no TLS
	}{
		{url: "redis://localhost:6379/2",
			want: redis.UniversalOptions{Addrs: []string{"localhost:6379"}, DB: 2}},
		{url: "rediss://user:p%40ss@cache.internal:6380",
			want: redis.UniversalOptions{Addrs: []string{"cache.internal:6380"}, Username: "user", Password: "p@ss"},
			tls:  "cache.internal"},
		{url: "redis-sentinel://:secret@10.0.0.1:26379,10.0.0.2/mymaster?db=1&sentinel_password=sp",
			want: redis.UniversalOptions{Addrs: []string{"10.0.0.1:26379", "10.0.0.2:26379"}, MasterName: "mymaster",
				Password: "secret", DB: 1, SentinelPassword: "sp"}},
		{url: "redis-cluster://a:7000,b:7001,c:7002",
			want: redis.UniversalOptions{Addrs: []string{"a:7000", "b:7001", "c:7002"}, IsClusterMode: true}},
		{url: "rediss-cluster://u:pw@cfg.example:6379",
			want: redis.UniversalOptions{Addrs: []string{"cfg.example:6379"}, IsClusterMode: true, Username: "u", Password: "pw"},
			tls:  "cfg.example"},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			got, err := Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if !got.ContextTimeoutEnabled {
				t.Error("ContextTimeoutEnabled not set")
			}
			gotTLS := ""
			if got.TLSConfig != nil {
				gotTLS = got.TLSConfig.ServerName
			}
			if gotTLS != tc.tls {
				t.Errorf("TLS server name = %q, want %q", gotTLS, tc.tls)
			}
			tc.want.ContextTimeoutEnabled = true
			opts := cmpopts.IgnoreFields(redis.UniversalOptions{}, "TLSConfig", "DialTimeout", "ReadTimeout", "WriteTimeout",
				"PoolTimeout", "MaxRetries", "MinRetryBackoff", "MaxRetryBackoff", "PoolSize", "MinIdleConns", "MaxIdleConns",
				"ConnMaxIdleTime", "ConnMaxLifetime", "MaxActiveConns", "Protocol", "ClientName", "PoolFIFO")
			if d := cmp.Diff(tc.want, *got, opts, cmpopts.IgnoreUnexported(redis.UniversalOptions{})); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseRedisURLRejects(t *testing.T) {
	for _, u := range []string{
		"localhost:6379",
		"http://localhost",
		"redis-sentinel://h:1",                  // no master name
		"redis-cluster://h:1/0",                 // cluster has no db
		"redis-cluster://h:1?bogus=1",           // unknown option
		"redis-cluster://",                      // no hosts
		"redis://user:hunter2@host:6379/notadb", // the password must not leak into the error
	} {
		_, err := Parse(u)
		if !errors.Is(err, budget.ErrInvalid) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid", u, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}
