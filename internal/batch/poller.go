package batch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/ledger"
	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
	"github.com/clade-gateway/clade-gateway/internal/spend"
)

// Settler charges results; budget stores implement it.
type Settler interface {
	Settle(ctx context.Context, r budget.Reservation, actual money.Nanos) error
}

// Pricer prices one result's usage.
type Pricer interface {
	Cost(u meter.Usage, at time.Time) (pricing.Cost, error)
	Known(model string) bool
}

// PollerOptions configure a Poller.
type PollerOptions struct {
	Tracker *Tracker
	Store   interface {
		Records
		Settler
	}
	Upstream  *url.URL
	Transport http.RoundTripper
	Policy    func() *policy.Policy
	Prices    func() Pricer
	Logger    *zap.Logger
	Spend     *spend.Recorder // nil: no spend records or cost metrics
	Interval  time.Duration
	Clock     func() time.Time
}

// Poller follows tracked batches until they end and meters their results.
// Replicas share the work through a lease per batch, so each batch is
// fetched by one replica at a time; charging is idempotent per
// (batch, custom_id) regardless.
type Poller struct {
	o      PollerOptions
	client *http.Client
	log    *zap.Logger
}

// NewPoller returns a Poller.
func NewPoller(o PollerOptions) *Poller {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	return &Poller{o: o, client: &http.Client{Transport: o.Transport, Timeout: 5 * time.Minute}, log: o.Logger.Named("batch")}
}

// Run polls every Interval until ctx ends.
func (p *Poller) Run(ctx context.Context) {
	t := time.NewTicker(p.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.Poll(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("batch poll failed", zap.Error(err))
			}
		}
	}
}

// Poll checks every tracked batch once.
func (p *Poller) Poll(ctx context.Context) error {
	recs, err := p.o.Tracker.pending(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, rec := range recs {
		ok, err := p.o.Store.TryLock(ctx, "batchpoll:"+rec.ID, p.o.Interval+time.Minute)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue // another replica has it
		}
		if err := p.pollOne(ctx, rec); err != nil {
			errs = append(errs, fmt.Errorf("batch %s: %w", rec.ID, err))
		}
	}
	return errors.Join(errs...)
}

func (p *Poller) pollOne(ctx context.Context, rec Record) error {
	key, err := p.key(rec)
	if err != nil {
		return err
	}
	var obj struct {
		Status string `json:"processing_status"`
	}
	if err := p.getJSON(ctx, key, "/v1/messages/batches/"+url.PathEscape(rec.ID), &obj); err != nil {
		return err
	}
	if obj.Status != "ended" {
		return nil
	}
	n, total, err := p.meterResults(ctx, key, rec)
	if err != nil {
		return err
	}
	// Every result is charged; the admission hold has done its job.
	if err := p.o.Store.Settle(ctx, rec.Hold, 0); err != nil {
		return fmt.Errorf("release hold: %w", err)
	}
	p.log.Info("batch metered", zap.String("batch_id", rec.ID), zap.String("service", rec.Service),
		zap.Int("results", n), zap.String("cost_usd", total.String()))
	return p.o.Tracker.done(ctx, rec.ID)
}

// meterResults streams the JSONL results and charges each succeeded line
// once, under the request id batch:<id>:<custom_id>.
func (p *Poller) meterResults(ctx context.Context, key string, rec Record) (int, money.Nanos, error) {
	resp, err := p.do(ctx, key, "/v1/messages/batches/"+url.PathEscape(rec.ID)+"/results")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	prices := p.o.Prices()
	var n int
	var total money.Nanos
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		res, err := meter.ParseBatchResultLine(line)
		if err != nil {
			return n, total, fmt.Errorf("result line %d: %w", n+1, err)
		}
		if res.Type != "succeeded" {
			continue // errored, canceled and expired requests are not billed
		}
		if res.Usage.ServiceTier == "" {
			res.Usage.ServiceTier = "batch"
		}
		cost, err := prices.Cost(res.Usage, rec.AdmittedAt)
		if err != nil {
			return n, total, fmt.Errorf("price result %s: %w", res.CustomID, err)
		}
		r := budget.Reservation{RequestID: "batch:" + rec.ID + ":" + res.CustomID, Keys: rec.Hold.Keys,
			Ledger: ledger.Lines(ledger.Charge{At: rec.AdmittedAt, Workspace: rec.Workspace, Key: p.keyName(rec),
				Model: res.Usage.Model, Cost: cost})}
		if err := p.o.Store.Settle(ctx, r, cost.Total); err != nil {
			return n, total, fmt.Errorf("charge result %s: %w", res.CustomID, err)
		}
		n++
		total += cost.Total
		p.record(rec, r.RequestID, res, cost, prices)
	}
	return n, total, sc.Err()
}

// record exports one result like any metered response. A poll that died
// half-way and runs again charges nothing twice (settlement is idempotent)
// but may log the results it had already logged.
func (p *Poller) record(rec Record, id string, res meter.BatchResult, cost pricing.Cost, prices Pricer) {
	if p.o.Spend == nil {
		return
	}
	team := ""
	if svc, ok := p.o.Policy().Services[rec.Service]; ok {
		team = svc.Team.Name
	}
	label := "other"
	if prices.Known(res.Usage.Model) {
		label = res.Usage.Model
	}
	model := res.Usage.Model
	if len(model) > 80 {
		model = model[:80]
	}
	p.o.Spend.Add(spend.Record{RequestID: id, Service: rec.Service, Team: team, Workspace: rec.Workspace,
		Model: model, ModelLabel: label, AdmittedAt: rec.AdmittedAt, Usage: res.Usage, Cost: cost})
}

// keyName is the name of the workspace key a batch was created with.
func (p *Poller) keyName(rec Record) string {
	if rec.Key != "" {
		return rec.Key
	}
	if ws, ok := p.o.Policy().Workspaces[rec.Workspace]; ok && len(ws.Keys) > 0 {
		return ws.Keys[0].Name
	}
	return ""
}

func (p *Poller) key(rec Record) (string, error) {
	pol := p.o.Policy()
	ws, ok := pol.Workspaces[rec.Workspace]
	if !ok || len(ws.Keys) == 0 {
		return "", fmt.Errorf("workspace %q is no longer in the policy", rec.Workspace)
	}
	return string(ws.Keys[0].Secret), nil
}

func (p *Poller) do(ctx context.Context, key, path string) (*http.Response, error) {
	u := *p.o.Upstream
	u.Path = path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Api-Key", key)
	req.Header.Set("Anthropic-Version", "2023-06-01")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: upstream status %d", path, resp.StatusCode)
	}
	return resp, nil
}

func (p *Poller) getJSON(ctx context.Context, key, path string, v any) error {
	resp, err := p.do(ctx, key, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}
