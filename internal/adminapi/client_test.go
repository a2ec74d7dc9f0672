package adminapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/adminapi"
	"github.com/clade-gateway/clade-gateway/internal/fakeadmin"
	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

const adminKey = "sk-ant-admin01-CANARYADMINAPIKEY0123456789abcdef"

func newFake(t *testing.T) (*fakeadmin.Server, string) {
	t.Helper()
	prices, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	f := fakeadmin.New(adminKey, nil, nil, prices)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func client(t *testing.T, url, key string, slept *[]time.Duration) *adminapi.Client {
	t.Helper()
	c, err := adminapi.New(adminapi.Options{BaseURL: url, Key: key, Retries: 3,
		Sleep: func(_ context.Context, d time.Duration) error { *slept = append(*slept, d); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var day0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func TestUsageFollowsPagesAndBacksOff(t *testing.T) {
	f, url := newFake(t)
	// Ten days of hours are 240 buckets: two pages of at most 168.
	for i := range 10 {
		f.InjectUsage(fakeadmin.Usage{At: day0.AddDate(0, 0, i).Add(5 * time.Hour), APIKeyID: "apikey_01A", WorkspaceID: "wrkspc_01W",
			Model: "claude-sonnet-4-6", Tokens: fakeupstream.Usage{InputTokens: 100, Cache5m: 7, Cache1h: 3, CacheCreation: 10, OutputTokens: 10, WebSearch: 1}})
	}
	f.InjectUsage(fakeadmin.Usage{At: day0.Add(6 * time.Hour), WorkspaceID: "wrkspc_01W", Model: "claude-haiku-4-5",
		Tokens: fakeupstream.Usage{InputTokens: 5, ServiceTier: "priority", InferenceGeo: "us"}})
	f.FailNext(1, http.StatusTooManyRequests, "7")
	f.FailNext(1, http.StatusInternalServerError, "")
	var slept []time.Duration
	rows, err := client(t, url, adminKey, &slept).Usage(context.Background(), day0, day0.AddDate(0, 0, 10))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 11 {
		t.Fatalf("%d rows, want 11 across two pages: %+v", len(rows), rows)
	}
	r := rows[0]
	if !r.Hour.Equal(day0.Add(5*time.Hour)) || r.APIKeyID != "apikey_01A" || r.WorkspaceID != "wrkspc_01W" ||
		r.Model != "claude-sonnet-4-6" || r.UncachedInput != 100 || r.CacheWrite5m != 7 || r.CacheWrite1h != 3 ||
		r.Output != 10 || r.WebSearch != 1 || r.ServiceTier != "standard" || r.InferenceGeo != "global" || r.Speed != "standard" {
		t.Errorf("first row %+v", r)
	}
	if p := rows[1]; p.APIKeyID != "" || p.ServiceTier != "priority" || p.InferenceGeo != "us" {
		t.Errorf("Console row %+v: want no key, priority, us", p)
	}
	if !rows[10].Hour.Equal(day0.AddDate(0, 0, 9).Add(5 * time.Hour)) {
		t.Errorf("last row %+v: the second page was not followed", rows[10])
	}
	if len(slept) != 2 || slept[0] != 7*time.Second || slept[1] != time.Second {
		t.Errorf("waits %v, want retry-after 7s then the default 1s", slept)
	}
	if n := f.Requests(); n != 4 {
		t.Errorf("%d requests, want 4 (two failures, two pages)", n)
	}
}

func TestCostsInCents(t *testing.T) {
	f, url := newFake(t)
	f.InjectCost(fakeadmin.Cost{Day: day0.AddDate(0, 0, 1), WorkspaceID: "wrkspc_01W", CostType: "code_execution",
		Description: "Code Execution Usage", Amount: 123_456_789})
	f.InjectUsage(fakeadmin.Usage{At: day0.Add(time.Hour), APIKeyID: "apikey_01A", WorkspaceID: "wrkspc_01W",
		Model: "claude-sonnet-4-6", Tokens: fakeupstream.Usage{InputTokens: 1_000_000}})
	var slept []time.Duration
	rows, err := client(t, url, adminKey, &slept).Costs(context.Background(), day0, day0.AddDate(0, 0, 40))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("rows %+v", rows)
	}
	if r := rows[0]; r.CostType != "tokens" || r.Model != "claude-sonnet-4-6" || r.Amount != 3*money.PerUSD ||
		r.TokenType != "uncached_input_tokens" || !strings.Contains(r.Description, "Input Tokens") {
		t.Errorf("token row %+v", r)
	}
	if r := rows[1]; r.CostType != "code_execution" || r.Amount != 123_456_789 || !r.Day.Equal(day0.AddDate(0, 0, 1)) {
		t.Errorf("code execution row %+v", r)
	}
}

func TestRefusedKeyNamesNoKey(t *testing.T) {
	_, url := newFake(t)
	var slept []time.Duration
	_, err := client(t, url, "sk-ant-admin01-WRONGKEY", &slept).Usage(context.Background(), day0, day0.AddDate(0, 0, 1))
	if !errors.Is(err, adminapi.ErrUnauthorized) || strings.Contains(err.Error(), "WRONGKEY") || len(slept) != 0 {
		t.Errorf("err %v after %d retries: want ErrUnauthorized at once, naming no key", err, len(slept))
	}
}

func TestGivesUpAfterRetries(t *testing.T) {
	f, url := newFake(t)
	f.FailNext(10, http.StatusServiceUnavailable, "")
	var slept []time.Duration
	_, err := client(t, url, adminKey, &slept).Costs(context.Background(), day0, day0.AddDate(0, 0, 1))
	var ae *adminapi.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || len(slept) != 3 {
		t.Errorf("err %v after %v: want the 503 after 3 retries", err, slept)
	}
	if slept[0] != time.Second || slept[1] != 2*time.Second || slept[2] != 4*time.Second {
		t.Errorf("backoff %v, want 1s 2s 4s", slept)
	}
}

func TestParseCents(t *testing.T) {
	for _, c := range []struct {
		in   string
		want money.Nanos
		ok   bool
	}{
		{"0", 0, true}, {"123.78912", 1_237_891_200, true}, {"0.0000001", 1, true}, {"0.00000005", 1, true},
		{"0.00000004", 0, true}, {"-2.5", -25_000_000, true}, {"1e3", 0, false}, {"", 0, false}, {"12.a", 0, false},
	} {
		got, err := adminapi.ParseCents(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseCents(%q) = %d, %v; want %d, ok %t", c.in, got, err, c.want, c.ok)
		}
	}
}
