package proxy

import (
	"context"
	"errors"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/ledger"
	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// The charging rules, applied to outcomes as finish receives them. Haiku
// 4.5 lists at $1/MTok input, $5/MTok output, $1.25/MTok 5-minute cache
// writes and $0.10/MTok cache reads: 1,000, 5,000, 1,250 and 100 nano-USD
// a token.

// haikuBody has max_tokens 1000, no tools and no cache_control, in the
// global geography: its usage is bounded by max_tokens and the model's
// 200,000-token context window.
const haikuBody = `{"model":"claude-haiku-4-5","max_tokens":1000,"inference_geo":"global","messages":[{"role":"user","content":"hi"}]}`

// settleRecorder is a store that records what is settled.
type settleRecorder struct {
	mu      sync.Mutex
	settled []budget.Reservation
	actual  []money.Nanos
}

func (s *settleRecorder) Reserve(context.Context, budget.Hold) (budget.Reservation, error) {
	return budget.Reservation{}, errors.New("charge tests do not reserve")
}
func (s *settleRecorder) Extend(context.Context, budget.Reservation, time.Duration) error {
	return nil
}
func (s *settleRecorder) Settle(_ context.Context, r budget.Reservation, actual money.Nanos) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settled = append(s.settled, r)
	s.actual = append(s.actual, actual)
	return nil
}

type chargeRig struct {
	h     *Handler
	reg   *prometheus.Registry
	store *settleRecorder
	st    *State
}

func newChargeRig(t *testing.T) *chargeRig {
	t.Helper()
	tbl, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	rig := &chargeRig{reg: prometheus.NewRegistry(), store: &settleRecorder{}, st: NewState(testPolicy(t, "reject"), tbl, nil)}
	// Nothing is forwarded: the rules run on outcomes given to them.
	up := &url.URL{Scheme: "http", Host: "127.0.0.1:1"}
	rig.h, err = New(Options{Upstream: up, State: func() *State { return rig.st }, Budget: rig.store,
		Journal: &memJournal{entries: map[string]money.Nanos{}}, Registerer: rig.reg})
	if err != nil {
		t.Fatal(err)
	}
	return rig
}

// admitted is a call for body as admission leaves it: parsed, and holding
// the request's estimate.
func (rig *chargeRig) admitted(t *testing.T, body string) *call {
	t.Helper()
	req, err := parseMessages([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 19, 42, 7, 0, time.UTC)
	est, _, err := estimateAll(rig.st, req, int64(len(body)), false, at)
	if err != nil {
		t.Fatal(err)
	}
	svc := rig.st.Policy.Services["recommendation"]
	return &call{id: "req_clade_test", start: at, state: rig.st, svc: svc, service: svc.Name, route: routeMessages,
		body: []byte(body), req: req, model: req.Model, modelLabel: rig.st.modelLabel(req.Model),
		at: at, estimate: est, metered: true, res: budget.Reservation{RequestID: "req_clade_test", Amount: est}}
}

// reported is a final usage with both counts reported.
var reported = meter.Validity{InputReported: true, OutputReported: true}

func complete(u meter.Usage) meter.StreamResult {
	return meter.StreamResult{Usage: u, SawStart: true, SawDelta: true, SawStop: true}
}

func TestReportedUsageIsPricedExactly(t *testing.T) {
	rig := newChargeRig(t)
	for _, tt := range []struct {
		name string
		u    meter.Usage
		want money.Nanos
	}{
		{"input and output", meter.Usage{Model: "claude-haiku-4-5", InputTokens: 1200, OutputTokens: 300}, 1200*1_000 + 300*5_000},
		{"cache reads and writes", meter.Usage{Model: "claude-haiku-4-5", InputTokens: 10, CacheReadInputTokens: 5_000,
			CacheCreationInputTokens: 2_000, OutputTokens: 7}, 10*1_000 + 5_000*100 + 2_000*1_250 + 7*5_000},
		// A response that names no model is priced as the model admitted.
		{"no model in the response", meter.Usage{InputTokens: 1200, OutputTokens: 300}, 1200*1_000 + 300*5_000},
		// A model the table lacks (a server-side fallback, say) is priced
		// as the model admitted.
		{"unknown model in the response", meter.Usage{Model: "claude-haiku-9", InputTokens: 1200, OutputTokens: 300}, 1200*1_000 + 300*5_000},
		// A compaction iteration's output is not bounded by max_tokens.
		{"compaction above max_tokens", meter.Usage{Model: "claude-haiku-4-5", InputTokens: 10, OutputTokens: 2_000,
			IterationsJSON: `[{"type":"compaction","input_tokens":5,"output_tokens":1500},{"type":"message","input_tokens":5,"output_tokens":500}]`},
			10*1_000 + 2_000*5_000},
	} {
		c := rig.admitted(t, haikuBody)
		for _, o := range []outcome{
			outcomeJSON{usage: tt.u, valid: reported, ok: true},
			outcomeStream{res: complete(tt.u), valid: reported},
		} {
			ch := rig.h.chargeFor(c, o)
			if ch.cost.Total != tt.want || ch.cause != "" {
				t.Errorf("%s, %T: charged %s by %q, want %s by its usage", tt.name, o, ch.cost.Total, ch.cause, tt.want)
			}
			if ch.usage.Model == "" {
				t.Errorf("%s, %T: the charge's usage names no model", tt.name, o)
			}
		}
	}
	for _, cause := range estimateCauses() {
		if n := testutil.ToFloat64(rig.h.m.estimated.WithLabelValues(cause)); n != 0 {
			t.Errorf("%v estimated charges by %s after charges by usage, want none", n, cause)
		}
	}
}

func TestImpossibleUsageIsChargedTheHold(t *testing.T) {
	rig := newChargeRig(t)
	ok := meter.Usage{Model: "claude-haiku-4-5", InputTokens: 10, OutputTokens: 10}
	with := func(f func(*meter.Usage)) meter.Usage { u := ok; f(&u); return u }
	for _, tt := range []struct {
		name, reason string
		u            meter.Usage
		v            meter.Validity
	}{
		{"negative input", impossibleInvalid, ok, meter.Validity{InputReported: true, OutputReported: true, Invalid: "input_tokens"}},
		{"missing output", impossibleMissing, with(func(u *meter.Usage) { u.OutputTokens = 0 }), meter.Validity{InputReported: true}},
		{"missing input", impossibleMissing, ok, meter.Validity{OutputReported: true}},
		{"output over max_tokens", impossibleMaxTokens, with(func(u *meter.Usage) { u.OutputTokens = 1001 }), reported},
		{"prompt over the context window", impossibleContext, with(func(u *meter.Usage) { u.CacheReadInputTokens = 200_000 }), reported},
		{"web searches without a web search tool", impossibleSearches, with(func(u *meter.Usage) { u.WebSearchRequests = 1 }), reported},
		{"an iteration over max_tokens", impossibleMaxTokens, with(func(u *meter.Usage) {
			u.OutputTokens = 1500
			u.IterationsJSON = `[{"type":"message","input_tokens":5,"output_tokens":1001},{"type":"message","input_tokens":5,"output_tokens":499}]`
		}), reported},
	} {
		for _, o := range []outcome{
			outcomeJSON{usage: tt.u, valid: tt.v, ok: true},
			outcomeStream{res: complete(tt.u), valid: tt.v},
		} {
			c := rig.admitted(t, haikuBody)
			before := testutil.ToFloat64(rig.h.m.impossible.WithLabelValues(tt.reason))
			ch := rig.h.chargeFor(c, o)
			if ch.cost.Total != c.estimate || ch.cause != "impossible_usage" {
				t.Errorf("%s, %T: charged %s by %q, want the hold's estimate %s by impossible_usage", tt.name, o, ch.cost.Total, ch.cause, c.estimate)
			}
			if ch.usage != tt.u {
				t.Errorf("%s, %T: the charge keeps usage %+v, want the usage as reported", tt.name, o, ch.usage)
			}
			if got := testutil.ToFloat64(rig.h.m.impossible.WithLabelValues(tt.reason)) - before; got != 1 {
				t.Errorf("%s, %T: impossible usage %q counted %v times, want once", tt.name, o, tt.reason, got)
			}
		}
	}
}

func TestInterruptedStreamIsChargedWhatItStreamed(t *testing.T) {
	rig := newChargeRig(t)
	start := meter.Usage{Model: "claude-haiku-4-5", InputTokens: 50, OutputTokens: 1}
	for _, tt := range []struct {
		name  string
		res   meter.StreamResult
		valid meter.Validity
		want  money.Nanos
	}{
		// A token is at least one byte of delta payload: 400 bytes bound
		// the output at 400 tokens.
		{"text cut after 400 bytes", meter.StreamResult{Usage: start, SawStart: true, StreamedOutputBytes: 400},
			meter.Validity{InputReported: true, OutputReported: true}, 50*1_000 + 400*5_000},
		// The API generates no more than max_tokens, however many bytes.
		{"bytes above max_tokens", meter.StreamResult{Usage: start, SawStart: true, StreamedOutputBytes: 50_000},
			meter.Validity{InputReported: true, OutputReported: true}, 50*1_000 + 1000*5_000},
		// A message_delta's count above the bytes streamed wins.
		{"a delta's count", meter.StreamResult{Usage: withOutput(start, 700), SawStart: true, SawDelta: true, StreamedOutputBytes: 100},
			meter.Validity{InputReported: true, OutputReported: true}, 50*1_000 + 700*5_000},
		// An error event ends the stream without its final usage.
		{"error event after the final delta", meter.StreamResult{Usage: withOutput(start, 20), SawStart: true, SawDelta: true, SawStop: true,
			ErrorType: "overloaded_error", StreamedOutputBytes: 300}, meter.Validity{InputReported: true, OutputReported: true}, 50*1_000 + 300*5_000},
	} {
		c := rig.admitted(t, haikuBody)
		ch := rig.h.chargeFor(c, outcomeStream{res: tt.res, valid: tt.valid, err: errClientGone})
		if ch.cost.Total != tt.want || ch.cause != "interrupted_stream" {
			t.Errorf("%s: charged %s by %q, want %s by interrupted_stream", tt.name, ch.cost.Total, ch.cause, tt.want)
		}
		if ch.cost.Total >= c.estimate {
			t.Errorf("%s: charged %s, not below the hold %s", tt.name, ch.cost.Total, c.estimate)
		}
	}
	if n := testutil.ToFloat64(rig.h.m.estimated.WithLabelValues("interrupted_stream")); n != 4 {
		t.Errorf("interrupted_stream charges counted %v, want 4", n)
	}
}

func withOutput(u meter.Usage, output int64) meter.Usage { u.OutputTokens = output; return u }

// The hold is charged whenever what was seen does not bound what was
// billed: undercounting is the failure a spend cap cannot afford.
func TestUnknownOutcomesAreChargedTheHold(t *testing.T) {
	rig := newChargeRig(t)
	start := meter.Usage{Model: "claude-haiku-4-5", InputTokens: 50, OutputTokens: 1}
	for _, tt := range []struct {
		name, cause string
		o           outcome
	}{
		// Thinking, redacted thinking and unknown block types bill more
		// tokens than their bytes show.
		{"interrupted stream with unseen output", "interrupted_stream_unseen_output",
			outcomeStream{res: meter.StreamResult{Usage: start, SawStart: true, StreamedOutputBytes: 12}, valid: reported, opaque: true, err: errClientGone}},
		{"interrupted stream with an impossible start", "impossible_usage",
			outcomeStream{res: meter.StreamResult{Usage: start, SawStart: true}, valid: meter.Validity{Invalid: "input_tokens"}, err: errClientGone}},
		{"interrupted stream with a prompt over the context window", "impossible_usage",
			outcomeStream{res: meter.StreamResult{Usage: meter.Usage{InputTokens: 200_001}, SawStart: true}, valid: reported, err: errClientGone}},
		{"stream cut before message_start", "stream_without_start",
			outcomeStream{res: meter.StreamResult{StreamedOutputBytes: 100}, err: errClientGone}},
		{"JSON without usage", "json_without_usage", outcomeJSON{err: errClientGone}},
		{"upstream failed after connecting", "upstream_failed", outcomeFailed{err: errors.New("read: connection reset by peer")}},
		// An iteration on a model the table lacks, even as the admitted one.
		{"usage the table cannot price", "unpriced_usage", outcomeJSON{usage: meter.Usage{Model: "claude-haiku-4-5", InputTokens: 5, OutputTokens: 5,
			IterationsJSON: `[{"type":"message","model":"claude-haiku-9","input_tokens":5,"output_tokens":5}]`}, valid: reported, ok: true}},
	} {
		c := rig.admitted(t, haikuBody)
		before := testutil.ToFloat64(rig.h.m.estimated.WithLabelValues(tt.cause))
		ch := rig.h.chargeFor(c, tt.o)
		if ch.cost.Total != c.estimate || ch.cause != tt.cause {
			t.Errorf("%s: charged %s by %q, want the hold's estimate %s by %s", tt.name, ch.cost.Total, ch.cause, c.estimate, tt.cause)
		}
		if got := testutil.ToFloat64(rig.h.m.estimated.WithLabelValues(tt.cause)) - before; got != 1 {
			t.Errorf("%s: estimated charge %q counted %v times, want once", tt.name, tt.cause, got)
		}
	}
}

// What the API refused, and what never reached it, costs nothing.
func TestNothingBilledIsChargedZero(t *testing.T) {
	rig := newChargeRig(t)
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, o := range []outcome{outcomeRefused{}, outcomeFailed{err: dial, dial: isDialError(dial)}, outcomeUnsettled{}} {
		c := rig.admitted(t, haikuBody)
		if ch := rig.h.chargeFor(c, o); ch.cost.Total != 0 || ch.cause != "" {
			t.Errorf("%T: charged %s by %q, want zero", o, ch.cost.Total, ch.cause)
		}
	}
}

// A service tier or speed without a list price is charged at least the
// hold, and the standard price when that is more.
func TestUnpricedTierIsChargedAtLeastTheHold(t *testing.T) {
	rig := newChargeRig(t)
	for _, u := range []meter.Usage{
		{Model: "claude-haiku-4-5", InputTokens: 1200, OutputTokens: 300, ServiceTier: "priority"},
		{Model: "claude-haiku-4-5", InputTokens: 1200, OutputTokens: 300, Speed: "turbo"},
	} {
		c := rig.admitted(t, haikuBody)
		ch := rig.h.chargeFor(c, outcomeJSON{usage: u, valid: reported, ok: true})
		if ch.cost.Total != c.estimate || ch.cause != "unpriced_tier" {
			t.Errorf("tier %q speed %q: charged %s by %q, want the hold %s by unpriced_tier", u.ServiceTier, u.Speed, ch.cost.Total, ch.cause, c.estimate)
		}
		// A hold below the standard price (a fitted hold, say) does not
		// lower the charge below it.
		c.estimate = 1_000
		ch = rig.h.chargeFor(c, outcomeJSON{usage: u, valid: reported, ok: true})
		if want := money.Nanos(1200*1_000 + 300*5_000); ch.cost.Total != want || ch.cause != "unpriced_tier" {
			t.Errorf("tier %q speed %q, small hold: charged %s by %q, want the standard price %s", u.ServiceTier, u.Speed, ch.cost.Total, ch.cause, want)
		}
	}
}

// finish settles each outcome's charge once, with ledger lines that add up
// to it; a charge without a breakdown is counted as the "estimate"
// component in the ledger and the spend metrics.
func TestFinishSettlesTheCharge(t *testing.T) {
	usage := meter.Usage{Model: "claude-haiku-4-5", InputTokens: 1200, OutputTokens: 300}
	for _, tt := range []struct {
		name     string
		o        outcome
		estimate bool // charged the hold
		want     func(c *call) money.Nanos
		settles  bool
	}{
		{"usage", outcomeJSON{usage: usage, valid: reported, ok: true}, false, func(*call) money.Nanos { return 1200*1_000 + 300*5_000 }, true},
		{"hold", outcomeJSON{}, true, func(c *call) money.Nanos { return c.estimate }, true},
		{"impossible usage", outcomeJSON{usage: withOutput(usage, 5_000), valid: reported, ok: true}, true, func(c *call) money.Nanos { return c.estimate }, true},
		{"unpriced tier", outcomeJSON{usage: meter.Usage{Model: "claude-haiku-4-5", InputTokens: 1, OutputTokens: 1, ServiceTier: "priority"}, valid: reported, ok: true},
			true, func(c *call) money.Nanos { return c.estimate }, true},
		// A zero settlement releases the hold.
		{"refused upstream", outcomeRefused{}, false, func(*call) money.Nanos { return 0 }, true},
		{"batch created", outcomeUnsettled{}, false, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rig := newChargeRig(t)
			c := rig.admitted(t, haikuBody)
			rig.h.finish(c, tt.o)
			rig.h.Wait()
			rig.store.mu.Lock()
			defer rig.store.mu.Unlock()
			if !tt.settles {
				if len(rig.store.settled) != 0 {
					t.Fatalf("settled %v, want the hold left in place", rig.store.actual)
				}
				return
			}
			if len(rig.store.settled) != 1 {
				t.Fatalf("settled %d times, want once", len(rig.store.settled))
			}
			want := tt.want(c)
			if got := rig.store.actual[0]; got != want {
				t.Errorf("settled %s, want %s", got, want)
			}
			var sum money.Nanos
			var estimated money.Nanos
			for _, l := range rig.store.settled[0].Ledger {
				sum += l.Nanos
				if l.Component == ledger.Estimate {
					estimated += l.Nanos
				}
			}
			if sum != want {
				t.Errorf("ledger lines %+v sum to %s, want %s", rig.store.settled[0].Ledger, sum, want)
			}
			wantEstimated := money.Nanos(0)
			if tt.estimate {
				wantEstimated = want
			}
			if estimated != wantEstimated {
				t.Errorf("ledger counts %s as estimate, want %s", estimated, wantEstimated)
			}
			if got := componentUSD(t, rig.reg, ledger.Estimate); got != wantEstimated.Float() {
				t.Errorf("spend metrics count %v USD as estimate, want %v", got, wantEstimated.Float())
			}
		})
	}
}

// componentUSD is clade_gateway_component_cost_usd_total of one component,
// over every workspace and model.
func componentUSD(t *testing.T, reg *prometheus.Registry, component string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "clade_gateway_component_cost_usd_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "component" && l.GetValue() == component {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// Every cause of an estimated charge is a series from the start, so an
// alert on its rate works before the first such charge; and every cause a
// charging rule names is among them.
func TestEstimateCausesStartAtZero(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	causes := estimateCauses()
	if n := testutil.CollectAndCount(m.estimated); n != len(causes) {
		t.Fatalf("estimated charges: %d series at start, want %d", n, len(causes))
	}
	for _, c := range causes {
		if v := testutil.ToFloat64(m.estimated.WithLabelValues(c)); v != 0 {
			t.Errorf("cause %s starts at %v", c, v)
		}
	}
	rig := newChargeRig(t)
	for _, o := range []outcome{outcomeJSON{err: errClientGone}, outcomeStream{err: errClientGone}, outcomeFailed{err: errors.New("reset")}} {
		if ch := rig.h.chargeFor(rig.admitted(t, haikuBody), o); ch.cause == "" || !slices.Contains(causes, ch.cause) {
			t.Errorf("%T charged by cause %q, not among the exported causes", o, ch.cause)
		}
	}
}
