package pricing

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
)

func mustDefault(t testing.TB) *Table {
	t.Helper()
	tb, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	return tb
}

// sheetRow is one priced row of reference §7.1, copied by hand from the
// table: USD per MTok for input, 5m write, 1h write, cache read, output.
type sheetRow struct {
	ids                         []string // model ID first, then aliases
	in, w5, w1, read, out       string
	residency                   bool // Claude 4.6 and later (§7.4)
	readBefore20261007, comment string
}

var sheet = []sheetRow{
	{ids: []string{"claude-fable-5-2"}, in: "8", w5: "10", w1: "16", read: "0.20", out: "40", residency: true},
	{ids: []string{"claude-fable-5-1"}, in: "10", w5: "12.50", w1: "20", read: "0.25", out: "50", residency: true},
	{ids: []string{"claude-mythos-5-1"}, in: "10", w5: "12.50", w1: "20", read: "0.25", out: "50", residency: true},
	{ids: []string{"claude-fable-5"}, in: "10", w5: "12.50", w1: "20", read: "1", out: "50", residency: true},
	{ids: []string{"claude-mythos-5"}, in: "10", w5: "12.50", w1: "20", read: "1", out: "50", residency: true},
	{ids: []string{"claude-opus-5-5"}, in: "4", w5: "5", w1: "8", read: "0.20", out: "20", residency: true},
	{ids: []string{"claude-opus-5"}, in: "5", w5: "6.25", w1: "10", read: "0.50", out: "25", residency: true},
	{ids: []string{"claude-opus-4-8"}, in: "5", w5: "6.25", w1: "10", read: "0.50", out: "25", residency: true},
	{ids: []string{"claude-opus-4-7"}, in: "5", w5: "6.25", w1: "10", read: "0.50", out: "25", residency: true},
	{ids: []string{"claude-opus-4-6"}, in: "5", w5: "6.25", w1: "10", read: "0.50", out: "25", residency: true},
	{ids: []string{"claude-opus-4-5-20251101", "claude-opus-4-5"}, in: "5", w5: "6.25", w1: "10", read: "0.50", out: "25"},
	{ids: []string{"claude-opus-4-1-20250805", "claude-opus-4-1"}, in: "15", w5: "18.75", w1: "30", read: "1.50", out: "75"},
	{ids: []string{"claude-opus-4-20250514"}, in: "15", w5: "18.75", w1: "30", read: "1.50", out: "75"},
	{ids: []string{"claude-sonnet-5-5"}, in: "2", w5: "2.50", w1: "4", read: "0.10", out: "10", residency: true,
		readBefore20261007: "0.20", comment: "cache read cut on 2026-10-07"},
	{ids: []string{"claude-sonnet-5"}, in: "2", w5: "2.50", w1: "4", read: "0.20", out: "10", residency: true},
	{ids: []string{"claude-sonnet-4-6"}, in: "3", w5: "3.75", w1: "6", read: "0.30", out: "15", residency: true},
	{ids: []string{"claude-sonnet-4-5-20250929", "claude-sonnet-4-5"}, in: "3", w5: "3.75", w1: "6", read: "0.30", out: "15"},
	{ids: []string{"claude-sonnet-4-20250514"}, in: "3", w5: "3.75", w1: "6", read: "0.30", out: "15"},
	{ids: []string{"claude-haiku-5-5"}, in: "0.10", w5: "0.125", w1: "0.20", read: "0.01", out: "0.50", residency: true,
		comment: "prompt <= 100k tier"},
	{ids: []string{"claude-haiku-4-5-20251001", "claude-haiku-4-5"}, in: "1", w5: "1.25", w1: "2", read: "0.10", out: "5"},
	{ids: []string{"claude-3-5-haiku-20241022"}, in: "0.80", w5: "1", w1: "1.60", read: "0.08", out: "4"},
}

// TestSheetModelsPresent checks that every priced row of §7.1 is in the
// embedded table under every name, at the sheet's prices, and nothing else.
func TestSheetModelsPresent(t *testing.T) {
	tb := mustDefault(t)
	var want []string
	for _, row := range sheet {
		want = append(want, row.ids...)
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, tb.Models()); diff != "" {
		t.Errorf("Models() mismatch (-want +got):\n%s", diff)
	}

	after := time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC)
	before := time.Date(2026, 10, 6, 0, 0, 0, 0, time.UTC)
	for _, row := range sheet {
		for _, name := range row.ids {
			t.Run(name, func(t *testing.T) {
				if id, ok := tb.Canonical(name); !ok || id != row.ids[0] {
					t.Errorf("Canonical(%q) = %q, %v; want %q", name, id, ok, row.ids[0])
				}
				// 100,000 tokens of a kind cost exactly a tenth of the sheet's
				// $ figure (100,000 keeps Haiku 5.5 in its low tier).
				check := func(at time.Time, u meter.Usage, c Component, price string) {
					t.Helper()
					want, err := money.Parse(price)
					if err != nil {
						t.Fatal(err)
					}
					u.Model = name
					got, err := tb.Cost(u, at)
					if err != nil {
						t.Fatalf("Cost: %v", err)
					}
					want /= 10
					if got.Components[c] != want || got.Total != want {
						t.Errorf("100k %s at %s: got %s (total %s), want %s", c, at.Format(time.DateOnly), got.Components[c], got.Total, want)
					}
				}
				const mtok = 100_000
				check(after, meter.Usage{InputTokens: mtok}, Input, row.in)
				check(after, meter.Usage{CacheCreationInputTokens: mtok}, CacheWrite5m, row.w5)
				check(after, meter.Usage{CacheCreationInputTokens: mtok, CacheCreationSplit: true, CacheWrite1hTokens: mtok}, CacheWrite1h, row.w1)
				check(after, meter.Usage{CacheReadInputTokens: mtok}, CacheRead, row.read)
				check(after, meter.Usage{OutputTokens: mtok}, Output, row.out)
				readBefore := row.read
				if row.readBefore20261007 != "" {
					readBefore = row.readBefore20261007
				}
				check(before, meter.Usage{CacheReadInputTokens: mtok}, CacheRead, readBefore)

				// Data residency: $in × 1.1 on flagged models, $in elsewhere.
				in, _ := money.Parse(row.in)
				in /= 10
				wantUS := in
				if row.residency {
					wantUS = in * 11 / 10
				}
				got, err := tb.Cost(meter.Usage{Model: name, InputTokens: mtok, InferenceGeo: "us"}, after)
				if err != nil || got.Total != wantUS {
					t.Errorf("100k input with geo us: got %s, %v; want %s", got.Total, err, wantUS)
				}
			})
		}
	}
}

func TestUnpricedModelsAbsent(t *testing.T) {
	tb := mustDefault(t)
	for _, name := range []string{
		"claude-mythos-5-2", "claude-mythos-preview", // §7.1 rows without a price
		"claude-sonnet-4-6-20260101", "claude-opus-4", "claude-sonnet", "CLAUDE-SONNET-4-6", "", // no prefix or case guessing
	} {
		if tb.Known(name) {
			t.Errorf("Known(%q) = true, want false", name)
		}
	}
	if !tb.Known("claude-opus-4-5") || !tb.Known("claude-opus-4-5-20251101") {
		t.Error("Known is false for the Opus 4.5 alias or ID")
	}
}

// TestSheetMultipliers guards against typos in prices.yaml: the sheet's
// cache-write prices are always 1.25x and 2x the input price (§7).
func TestSheetMultipliers(t *testing.T) {
	tb := mustDefault(t)
	check := func(name string, r rates) {
		t.Helper()
		if r[CacheWrite5m]*4 != r[Input]*5 || r[CacheWrite1h] != r[Input]*2 {
			t.Errorf("%s: input %d, 5m %d, 1h %d nanos/MTok break the 1.25x/2x rule", name, r[Input], r[CacheWrite5m], r[CacheWrite1h])
		}
		if r[CacheRead] > r[Input] {
			t.Errorf("%s: cache read %d above input %d", name, r[CacheRead], r[Input])
		}
	}
	for _, m := range tb.models {
		for i, p := range m.periods {
			check(m.id+" period "+string(rune('0'+i)), p.std)
			if p.hasFast {
				check(m.id+" fast", p.fast)
			}
		}
		if m.longOver > 0 {
			check(m.id+" long", m.long)
		}
		if m.source == "" {
			t.Errorf("%s has no source", m.id)
		}
	}
}

func TestParseGood(t *testing.T) {
	src, err := os.ReadFile("testdata/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tb, err := parse(string(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if diff := cmp.Diff([]string{"m-fast-explicit", "m-plain", "m-plain-alias"}, tb.Models()); diff != "" {
		t.Errorf("Models() (-want +got):\n%s", diff)
	}
	if tb.webSearch != 10_000_000 {
		t.Errorf("web search fee = %d nanos, want 10,000,000 ($0.01)", tb.webSearch)
	}
	m := tb.byName["m-plain-alias"]
	// Unquoted 0.30 is read from its text: exactly 300,000,000 nanos/MTok.
	if got := m.at(time.Time{}).std[CacheRead]; got != 300_000_000 {
		t.Errorf("unquoted 0.30 = %d nanos/MTok, want 300,000,000", got)
	}
	if got := m.at(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)).std[Input]; got != 1_000_000_000 {
		t.Errorf("input from 2030-01-01 = %d, want 1,000,000,000", got)
	}
	// Fast: written-out cache read kept, the others derived from $8:
	// 5m 8 × 1.25 = $10, 1h 8 × 2 = $16.
	f := tb.byName["m-fast-explicit"].periods[0].fast
	want := rates{Input: 8e9, Output: 40e9, CacheWrite5m: 10e9, CacheWrite1h: 16e9, CacheRead: 333_000_000}
	if f != want {
		t.Errorf("fast rates = %v, want %v", f, want)
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		file    string
		wantErr string
	}{
		{"unknown_field.bad.yaml", "field colour not found"},
		{"bad_decimal.bad.yaml", "more than 9 fraction digits"},
		{"float_syntax.bad.yaml", `input: money: malformed amount: "1e1"`},
		{"first_dated.bad.yaml", "takes no effective_from"},
		{"dates_not_increasing.bad.yaml", "prices[2]: effective_from 2026-10-07 is not after the previous entry"},
		{"bad_date.bad.yaml", "effective_from: want YYYY-MM-DD"},
		{"duplicate_name.bad.yaml", `model name "m" is listed twice`},
		{"missing_rate.bad.yaml", "cache_read is required"},
		{"negative.bad.yaml", "input: -1 is negative"},
		{"fast_and_long.bad.yaml", "fast and long_prompt together"},
		{"long_no_threshold.bad.yaml", "over_prompt_tokens must be positive"},
		{"fast_no_output.bad.yaml", "fast: output is required"},
		{"no_source.bad.yaml", "source is required"},
		{"space_in_id.bad.yaml", "contains a space"},
		{"no_web_search.bad.yaml", "web_search_per_request is required"},
		{"two_docs.bad.yaml", "more than one YAML document"},
	}
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("%d bad fixtures on disk, %d in the table", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			_, err = parse(string(src))
			if !errors.Is(err, ErrInvalidTable) {
				t.Fatalf("parse error = %v, want ErrInvalidTable", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parse error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestComponentString(t *testing.T) {
	want := []string{"input", "output", "cache_write_5m", "cache_write_1h", "cache_read", "web_search"}
	var got []string
	for c := range Component(NumComponents) {
		got = append(got, c.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if s := Component(NumComponents).String(); s != "Component(6)" {
		t.Errorf("out-of-range String() = %q", s)
	}
}

func TestModelsIsACopy(t *testing.T) {
	tb := mustDefault(t)
	ms := tb.Models()
	ms[0] = "mutated"
	if tb.Models()[0] == "mutated" {
		t.Error("Models() exposes the table's slice")
	}
}
