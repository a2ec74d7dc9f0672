package spend

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/clade-gateway/clade-gateway/internal/jsonline/jsonlinetest"
	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// zapLine is the spend line as zap's production JSON encoder writes it,
// the format the spend log has always had and finance's readers parse.
func zapLine(t testing.TB, r *Recorder, rec Record, now time.Time) []byte {
	t.Helper()
	var out bytes.Buffer
	log := jsonlinetest.Logger(&out, now).Named("spend")
	u := rec.Usage
	f := []zap.Field{
		zap.String("request_id", rec.RequestID),
		zap.String("upstream_request_id", rec.UpstreamRequestID),
		zap.String("service", rec.Service), zap.String("team", rec.Team), zap.String("workspace", rec.Workspace),
		zap.String("model", rec.Model),
		zap.Time("admitted_at", rec.AdmittedAt),
		zap.Int64("input_tokens", u.InputTokens),
		zap.Int64("cache_creation_input_tokens", u.CacheCreationInputTokens),
		zap.Int64("cache_write_5m_tokens", u.CacheWrite5mTokens),
		zap.Int64("cache_write_1h_tokens", u.CacheWrite1hTokens),
		zap.Int64("cache_read_input_tokens", u.CacheReadInputTokens),
		zap.Int64("output_tokens", u.OutputTokens),
		zap.Int64("thinking_tokens", u.ThinkingTokens),
		zap.Int64("web_search_requests", u.WebSearchRequests),
		zap.Int64("web_fetch_requests", u.WebFetchRequests),
		zap.String("service_tier", u.ServiceTier),
		zap.String("inference_geo", u.InferenceGeo),
		zap.String("speed", u.Speed),
		zap.String("total_usd", rec.Cost.Total.String()),
	}
	for i := range pricing.NumComponents {
		comp := pricing.Component(i)
		f = append(f, zap.String(r.usdKeys[comp], rec.Cost.Components[comp].String()))
	}
	if rec.ChargedBy != "" {
		f = append(f, zap.String("charged_by", rec.ChargedBy))
	}
	if rec.MaxTokensFitted > 0 {
		f = append(f, zap.Int64("max_tokens_fitted", rec.MaxTokensFitted))
	}
	if len(rec.Principals) > 0 {
		f = append(f, zap.Object("principals", zapPrincipals(rec.Principals)))
	}
	log.Info("spend", f...)
	return out.Bytes()
}

type zapPrincipals []Principal

func (ps zapPrincipals) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, p := range ps {
		enc.AddString(p.From, p.Value)
	}
	return nil
}

func sampleRecord() Record {
	var cost pricing.Cost
	cost.Total = 8_100_000
	cost.Components[pricing.Input] = 3_600_000
	cost.Components[pricing.Output] = 4_500_000
	return Record{
		RequestID: "req_01", UpstreamRequestID: "req_up", Service: "recommendation", Team: "search",
		Workspace: "production", Model: "claude-sonnet-4-6", ModelLabel: "claude-sonnet-4-6",
		AdmittedAt: time.Date(2026, 12, 8, 0, 1, 2, 345678900, time.UTC),
		Usage: meter.Usage{Model: "claude-sonnet-4-6", InputTokens: 1200, OutputTokens: 300, CacheReadInputTokens: 7,
			CacheCreationInputTokens: 5, CacheWrite5mTokens: 3, CacheWrite1hTokens: 2, ThinkingTokens: 11,
			WebSearchRequests: 1, WebFetchRequests: 2, ServiceTier: "standard", InferenceGeo: "global", Speed: "fast"},
		Cost: cost,
	}
}

func TestSpendLineIsZapsLine(t *testing.T) {
	r := New(nil, nil, nil)
	now := time.Date(2026, 12, 8, 9, 30, 0, 120000000, time.FixedZone("CET", 3600))
	odd := "q\"b\\s\n\r\t\x01\x1f é 日本 \xff\xfe <&> \u2028"
	for name, edit := range map[string]func(*Record){
		"plain":      func(*Record) {},
		"charged by": func(r *Record) { r.ChargedBy = "interrupted_stream"; r.Cost.Components[pricing.Output] = 0 },
		"fitted":     func(r *Record) { r.MaxTokensFitted = 512 },
		"principals": func(r *Record) {
			r.Principals = []Principal{{"claude_code.user", "u@example.com"}, {"header:x-customer-id", odd}}
		},
		"odd strings":    func(r *Record) { r.Service, r.Model, r.RequestID, r.UpstreamRequestID = odd, odd, "", odd },
		"zero admission": func(r *Record) { r.AdmittedAt = time.Time{} },
		"negative cost":  func(r *Record) { r.Cost.Total = -1 },
		"large counts":   func(r *Record) { r.Usage.InputTokens = 1<<62 + 7; r.Cost.Total = money.Nanos(1 << 62) },
	} {
		rec := sampleRecord()
		edit(&rec)
		got := r.appendLine(nil, rec, now)
		if want := zapLine(t, r, rec, now); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
		if !json.Valid(got) {
			t.Errorf("%s: not JSON: %s", name, got)
		}
	}
}

func TestRecorderWritesOneLinePerRecord(t *testing.T) {
	var out bytes.Buffer
	now := time.Date(2026, 12, 8, 9, 30, 0, 0, time.UTC)
	r := New(nil, &out, func() time.Time { return now })
	r.Add(sampleRecord())
	r.Add(Record{Service: "refused"}) // nothing spent: no line
	if want := zapLine(t, r, sampleRecord(), now); !bytes.Equal(out.Bytes(), want) {
		t.Errorf("spend log:\n got %s\nwant %s", out.Bytes(), want)
	}
}

func FuzzSpendLine(f *testing.F) {
	f.Add("recommendation", "claude-sonnet-4-6", "header:x-customer-id", "c-1")
	f.Add("q\"\\\n\x00", "\xff\xfe", "é", "\u2028\t")
	r := New(nil, nil, nil)
	now := time.Date(2026, 12, 8, 9, 30, 0, 1, time.UTC)
	f.Fuzz(func(t *testing.T, service, model, from, value string) {
		rec := sampleRecord()
		rec.Service, rec.Model, rec.ChargedBy = service, model, value
		rec.Principals = []Principal{{From: from, Value: value}}
		got := r.appendLine(nil, rec, now)
		if want := zapLine(t, r, rec, now); !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}
