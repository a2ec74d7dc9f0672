package pricing

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
)

// The meter's recorded-shape fixtures. Their usage goldens live next to
// them; this file holds the cost side.
const fixturesDir = "../meter/testdata"

// fixtureDay is when the fixtures are priced unless a row says otherwise.
// On it Sonnet 5.5 cache reads are $0.10 (cut on 2026-10-07).
var fixtureDay = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

type toks = [NumComponents]int64

// fixtureCost is one fixture priced by hand from reference §7. A price of
// $P per MTok is P × 1,000 nano-USD per token; a web search is $0.01 =
// 10,000,000 nano-USD.
type fixtureCost struct {
	file    string // in fixturesDir
	line    string // custom_id of a batch_results.jsonl line
	variant string // what sets this row apart from the fixture's main row
	at      time.Time

	// interrupted marks a stream that is not Complete(): it is charged
	// meter.EstimateInterrupted(result, maxTokens), maxTokens being the
	// request's max_tokens (0: the client sent none we know of).
	interrupted bool
	maxTokens   int64
	cut         int // price only the first cut bytes: a stream torn early

	// unbilled says why the body gives nothing to price. The usage must
	// then be zero and name no model, so Cost refuses it.
	unbilled string

	model  string // canonical model the rates come from
	tokens toks
	comps  comps
	total  money.Nanos
}

func (r fixtureCost) name() string {
	n := r.file
	if r.line != "" {
		n += "#" + r.line
	}
	if r.variant != "" {
		n += "/" + r.variant
	}
	return n
}

// fixtureUsage meters a fixture with the real parsers and applies the
// proxy's rule for streams that are not complete.
func fixtureUsage(t *testing.T, r fixtureCost) meter.Usage {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(fixturesDir, r.file))
	if err != nil {
		t.Fatal(err)
	}
	if r.cut > 0 {
		body = body[:r.cut]
	}
	switch {
	case r.line != "":
		sc := bufio.NewScanner(bytes.NewReader(body))
		for sc.Scan() {
			res, err := meter.ParseBatchResultLine(sc.Bytes())
			if err != nil {
				t.Fatalf("batch line: %v", err)
			}
			if res.CustomID != r.line {
				continue
			}
			if billed := res.Type == "succeeded"; billed != (r.unbilled == "") {
				t.Fatalf("result type %q, but the row says unbilled = %q", res.Type, r.unbilled)
			}
			return res.Usage
		}
		t.Fatalf("no line with custom_id %q", r.line)
	case strings.HasSuffix(r.file, ".sse"):
		p := meter.NewSSEParser(meter.DefaultLimits())
		if _, err := p.Write(body); err != nil {
			t.Fatal(err)
		}
		res := p.Result()
		if res.Complete() == r.interrupted {
			t.Fatalf("Complete() = %v, but the row says interrupted = %v", res.Complete(), r.interrupted)
		}
		return meter.EstimateInterrupted(res, r.maxTokens)
	case strings.HasSuffix(r.file, ".json"):
		x := meter.NewJSONExtractor(meter.DefaultLimits())
		if _, err := x.Write(body); err != nil {
			t.Fatal(err)
		}
		u, found := x.Result()
		if found != (r.unbilled == "") {
			t.Fatalf("usage found = %v, but the row says unbilled = %q", found, r.unbilled)
		}
		return u
	default:
		t.Fatalf("unknown fixture kind %q", r.file)
	}
	return meter.Usage{}
}

// TestFixtureCosts prices every meter fixture and compares with the
// figures worked out by hand above.
func TestFixtureCosts(t *testing.T) {
	tb := mustDefault(t)
	for _, r := range fixtureCosts {
		t.Run(r.name(), func(t *testing.T) {
			u := fixtureUsage(t, r)
			at := r.at
			if at.IsZero() {
				at = fixtureDay
			}
			got, err := tb.Cost(u, at)
			if r.unbilled != "" {
				// Nothing names a model, so nothing can be priced from the
				// body by accident; the caller decides (zero or the estimate).
				if u != (meter.Usage{}) {
					t.Errorf("%s: usage = %+v, want zero", r.unbilled, u)
				}
				if !errors.Is(err, ErrUnknownModel) {
					t.Errorf("%s: Cost err = %v, want ErrUnknownModel", r.unbilled, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Cost(%+v): %v", u, err)
			}
			want := Cost{Total: r.total, Components: r.comps, Tokens: r.tokens, Model: r.model}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("cost mismatch (-hand +code):\n%s", diff)
			}
		})
	}
}

// TestFixtureCostRowsAddUp checks the hand arithmetic of each row against
// itself: every fixture's charges are whole nano-USD, so the components
// add up to the total exactly.
func TestFixtureCostRowsAddUp(t *testing.T) {
	for _, r := range fixtureCosts {
		var sum money.Nanos
		for _, c := range r.comps {
			sum += c
		}
		if sum != r.total {
			t.Errorf("%s: components add up to %d, row says %d", r.name(), sum, r.total)
		}
	}
}

// Every fixture file and every batch line has a cost row, so a new fixture
// cannot land without its hand-priced cost.
func TestFixtureCostsCoverTestdata(t *testing.T) {
	rows := map[string]bool{}
	for _, r := range fixtureCosts {
		rows[r.file+"#"+r.line] = true
	}
	var files []string
	for _, pat := range []string{"*.sse", "*.json"} {
		m, err := filepath.Glob(filepath.Join(fixturesDir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	n := 0
	for _, f := range files {
		base := filepath.Base(f)
		if strings.HasSuffix(base, ".golden.json") {
			continue
		}
		n++
		if !rows[base+"#"] {
			t.Errorf("fixture %s has no cost row", base)
		}
	}
	if n == 0 {
		t.Fatalf("no fixtures found in %s", fixturesDir)
	}
	body, err := os.ReadFile(filepath.Join(fixturesDir, "batch_results.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		res, err := meter.ParseBatchResultLine(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if !rows["batch_results.jsonl#"+res.CustomID] {
			t.Errorf("batch line %s has no cost row", res.CustomID)
		}
	}
}
