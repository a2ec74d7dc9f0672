package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	want := config{Listen: "127.0.0.1:8080", AdminListen: "127.0.0.1:9090", Config: "clade.yaml", UpstreamURL: "https://api.anthropic.com",
		DataDir: "./data", LogLevel: "info", LogFormat: "json", ReadHeaderTimeout: 10 * time.Second, ShutdownGrace: 30 * time.Second,
		PolicyPollInterval: 5 * time.Second, HoldTTL: 60 * time.Second, StoreTimeout: 500 * time.Millisecond, BatchPollInterval: 60 * time.Second}
	got := c
	if got.Listen != want.Listen || got.AdminListen != want.AdminListen || got.Config != want.Config || got.UpstreamURL != want.UpstreamURL ||
		got.DataDir != want.DataDir || got.LogLevel != want.LogLevel || got.LogFormat != want.LogFormat ||
		got.ReadHeaderTimeout != want.ReadHeaderTimeout || got.ShutdownGrace != want.ShutdownGrace ||
		got.PolicyPollInterval != want.PolicyPollInterval || got.HoldTTL != want.HoldTTL || got.StoreTimeout != want.StoreTimeout ||
		got.BatchPollInterval != want.BatchPollInterval || got.RedisURL != "" || got.PublicURL != "" {
		t.Errorf("defaults = %+v", got)
	}
}

func TestConfigRejects(t *testing.T) {
	for _, env := range []map[string]string{
		{"CLADE_UPSTREAM_URL": "ftp://x"},
		{"CLADE_PUBLIC_URL": "not a url"},
		{"CLADE_HOLD_TTL": "-1s"},
		{"CLADE_STORE_TIMEOUT": "soon"},
		{"CLADE_MAX_BODY_BYTES": "0"},
		{"CLADE_GRANT_WINDOW": "-1s", "CLADE_REDIS_URL": "redis://127.0.0.1:6379"},
		{"CLADE_GRANT_WINDOW": "-1s"},
	} {
		if _, err := loadConfig(func(k string) string { return env[k] }); err == nil {
			t.Errorf("%v accepted", env)
		}
	}
}

func TestConfigGrantWindow(t *testing.T) {
	const redisURL = "redis://127.0.0.1:6379"
	for _, tc := range []struct {
		env  map[string]string
		want time.Duration
	}{
		{map[string]string{}, 100 * time.Millisecond}, // the embedded store, with grants
		{map[string]string{"CLADE_GRANT_WINDOW": "250ms"}, 250 * time.Millisecond},
		{map[string]string{"CLADE_REDIS_URL": redisURL}, 100 * time.Millisecond},
		{map[string]string{"CLADE_REDIS_URL": redisURL, "CLADE_GRANT_WINDOW": "250ms"}, 250 * time.Millisecond},
		{map[string]string{"CLADE_REDIS_URL": redisURL, "CLADE_GRANT_WINDOW": "0"}, 0},
		{map[string]string{"CLADE_REDIS_URL": redisURL, "CLADE_GRANT_WINDOW": "0s"}, 0},
		{map[string]string{"CLADE_GRANT_WINDOW": "0"}, 0},
	} {
		c, err := loadConfig(func(k string) string { return tc.env[k] })
		if err != nil || c.GrantWindow != tc.want {
			t.Errorf("%v: window %v, err %v; want %v", tc.env, c.GrantWindow, err, tc.want)
		}
	}
}

func TestNewTokenAndHashTokenAgree(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"new-token"}, os.Getenv, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`token:  (clade_sk_[A-Za-z0-9_-]{43})\nsha256: ([0-9a-f]{64})`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("new-token printed %q", out.String())
	}
	var hashed bytes.Buffer
	if err := Run(context.Background(), []string{"hash-token"}, os.Getenv, strings.NewReader(m[1]+"\n"), &hashed, &hashed); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(m[1]))
	if strings.TrimSpace(hashed.String()) != m[2] || m[2] != hex.EncodeToString(sum[:]) {
		t.Errorf("hash-token %q, new-token %q", hashed.String(), m[2])
	}
}

func TestCheckConfig(t *testing.T) {
	var out bytes.Buffer
	sample := filepath.Join("..", "..", "deploy", "clade.yaml")
	if err := Run(context.Background(), []string{"check-config", "--policy-only", sample}, func(string) string { return "" }, nil, &out, &out); err != nil {
		t.Fatalf("sample policy invalid: %v", err)
	}
	if !strings.Contains(out.String(), "is valid: 1 workspaces, 1 teams, 2 services") {
		t.Errorf("output %q", out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("services:\n  x:\n    team: nope\n    bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), []string{"check-config", bad}, func(string) string { return "" }, nil, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:4") {
		t.Errorf("bad policy: %v", err)
	}
	out.Reset()
	if err := Run(context.Background(), []string{"check-config", "--diff", sample, sample}, func(string) string { return "" }, nil, &out, &out); err != nil || out.String() != "no changes\n" {
		t.Errorf("diff of a file with itself: %q %v", out.String(), err)
	}
}

func TestUnknownCommand(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"frobnicate"}, os.Getenv, nil, &out, &out); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("err = %v", err)
	}
}

// check-config also checks, as serve would, that the key variables the
// policy names are set and hold no placeholder.
func TestCheckConfigChecksKeyVariables(t *testing.T) {
	sample := filepath.Join("..", "..", "deploy", "clade.yaml")
	for _, tc := range []struct {
		key     string
		wantErr string
	}{
		{"", "environment variable ANTHROPIC_API_KEY is not set"},
		{"sk-ant-replace-me", "environment variable ANTHROPIC_API_KEY holds a placeholder"},
		{"sk-ant-api03-Zx9realLookingKey0123456789", ""},
	} {
		var out bytes.Buffer
		err := Run(context.Background(), []string{"check-config", sample}, func(k string) string {
			return map[string]string{"ANTHROPIC_API_KEY": tc.key}[k]
		}, nil, &out, &out)
		switch {
		case tc.wantErr == "" && (err != nil || !strings.Contains(out.String(), "workspace key variables: ANTHROPIC_API_KEY")):
			t.Errorf("%q: %v %q", tc.key, err, out.String())
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "clade.yaml:13")):
			t.Errorf("%q: error %v, want %q at the line naming it", tc.key, err, tc.wantErr)
		}
		if tc.key != "" && strings.Contains(out.String()+fmt.Sprint(err), tc.key) {
			t.Errorf("%q: the value is shown", tc.key)
		}
	}
}

func TestHelpAndVersionFlags(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		var out bytes.Buffer
		if err := Run(context.Background(), args, os.Getenv, nil, &out, &out); err != nil || !strings.Contains(out.String(), "usage: clade-gateway") ||
			!strings.Contains(out.String(), "demo") {
			t.Errorf("%v: %v %q", args, err, out.String())
		}
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		var out bytes.Buffer
		if err := Run(context.Background(), args, os.Getenv, nil, &out, &out); err != nil || out.String() != "clade-gateway "+Version+"\n" {
			t.Errorf("%v: %v %q", args, err, out.String())
		}
	}
}
