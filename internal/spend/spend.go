// Package spend exports metered charges: the cost and token counters that
// dashboards read, and one spend-log record per metered response (a batch
// result is a response) that finance keeps. The proxy and the batch poller
// share one Recorder, so both kinds of spend land in the same series.
package spend

import (
	"io"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
	"github.com/clade-gateway/clade-gateway/internal/promtable"
)

// Recorder writes charges to metrics and the spend log.
//
// A gateway may front thousands of services, so the per-service families
// carry one small extra label each (model; direction) and the breakdowns by
// cost component and token kind are labelled by workspace and model, which
// the policy and the price table bound, not by service. The spend log keeps
// every component of every response for finance.
type Recorder struct {
	cost          *promtable.Counters // service, team, workspace, model
	componentCost *promtable.Counters // workspace, model, component
	tokens        *promtable.Counters // workspace, model, kind
	serviceTokens *promtable.Counters // service, team, workspace, direction
	out           io.Writer           // the spend log; nil writes none
	now           func() time.Time    // the line's "ts"
	lines         sync.Pool           // *[]byte buffers for the lines
	// usdKeys are the spend log's per-component keys ("input_usd", ...),
	// built once instead of per record.
	usdKeys [pricing.NumComponents]string
}

// New registers the spend counters on reg and writes each record's line
// to out (nil: no spend log), stamped with clock (nil: time.Now). out gets
// one whole line per Write and must be safe for concurrent use. The
// per-service families are promtable Tables: a promtable.Registry gathers
// their thousands of series without collecting them one by one.
func New(reg prometheus.Registerer, out io.Writer, clock func() time.Time) *Recorder {
	if clock == nil {
		clock = time.Now
	}
	r := &Recorder{
		cost: promtable.NewCounters("clade_gateway_cost_usd_total",
			"Metered spend in USD, by service and model. Bounded by services x the models each uses; team and workspace follow from the service. By component: clade_gateway_component_cost_usd_total.",
			[]string{"service", "team", "workspace", "model"}, nil),
		componentCost: promtable.NewCounters("clade_gateway_component_cost_usd_total",
			"Metered spend in USD, by workspace, model and cost component (estimate for charges made by estimate). Bounded by workspaces x priced models x 7 components.",
			[]string{"workspace", "model", "component"}, nil),
		tokens: promtable.NewCounters("clade_gateway_tokens_total",
			"Metered tokens (web_search counts requests), by workspace, model and kind. Bounded by workspaces x priced models x 6 kinds; per service: clade_gateway_service_tokens_total.",
			[]string{"workspace", "model", "kind"}, nil),
		serviceTokens: promtable.NewCounters("clade_gateway_service_tokens_total",
			"Metered tokens per service, by direction: input (uncached input, cache writes and cache reads) or output. Bounded by services x 2; team and workspace follow from the service.",
			[]string{"service", "team", "workspace", "direction"}, nil),
		out: out, now: clock,
	}
	if reg != nil {
		reg.MustRegister(r.cost, r.componentCost, r.tokens, r.serviceTokens)
	}
	for i := range pricing.NumComponents {
		r.usdKeys[i] = pricing.Component(i).String() + "_usd"
	}
	return r
}

// Record is one metered response.
type Record struct {
	RequestID         string // the gateway's id (batch:<id>:<custom_id> for a batch result)
	UpstreamRequestID string
	Service, Team     string
	Workspace         string
	Model             string // as requested or reported (bounded in length by the caller)
	ModelLabel        string // the metrics label: a priced model or "other"
	AdmittedAt        time.Time
	Usage             meter.Usage
	Cost              pricing.Cost
	// Principals are the callers inside the service the request was
	// counted under (values as stored: hashed when the policy says so).
	Principals []Principal
	// ChargedBy names the estimate rule when the charge is not priced from
	// reported usage ("interrupted_stream", "upstream_failed", ...).
	ChargedBy string
	// MaxTokensFitted is the max_tokens the request was forwarded with when
	// it was lowered to fit its budgets (fit_max_tokens), else 0.
	MaxTokensFitted int64
}

// Add exports one charge. A charge made by estimate has no usage to break
// into components; it is counted under component "estimate".
func (r *Recorder) Add(rec Record) {
	var spent money.Nanos
	var input, output int64
	for i := range pricing.NumComponents {
		comp := pricing.Component(i)
		name := comp.String()
		if v := rec.Cost.Components[comp]; v != 0 {
			spent += v
			r.componentCost.Add(v.Float(), rec.Workspace, rec.ModelLabel, name)
		}
		n := rec.Cost.Tokens[comp]
		if n == 0 {
			continue
		}
		r.tokens.Add(float64(n), rec.Workspace, rec.ModelLabel, name)
		switch comp {
		case pricing.Output:
			output += n
		case pricing.WebSearch: // requests, not tokens
		default:
			input += n
		}
	}
	// A charge without a breakdown (the hold's estimate, for an unknown
	// outcome or impossible usage) counts as "estimate". Components are
	// each rounded up, so they never sum below a priced Total: only such a
	// charge leaves a shortfall.
	if extra := rec.Cost.Total - spent; extra > 0 {
		spent += extra
		r.componentCost.Add(extra.Float(), rec.Workspace, rec.ModelLabel, "estimate")
	}
	// The per-service counter takes the components' sum, as the sum of the
	// component series always did, so spend by service reads the same
	// whichever family a query uses.
	if spent != 0 {
		r.cost.Add(spent.Float(), rec.Service, rec.Team, rec.Workspace, rec.ModelLabel)
	}
	if input != 0 {
		r.serviceTokens.Add(float64(input), rec.Service, rec.Team, rec.Workspace, "input")
	}
	if output != 0 {
		r.serviceTokens.Add(float64(output), rec.Service, rec.Team, rec.Workspace, "output")
	}
	if rec.Cost.Total == 0 && rec.ChargedBy == "" && rec.Usage.Model == "" {
		return // nothing was spent (refused upstream)
	}
	if r.out != nil {
		r.writeLine(rec)
	}
}

// Principal is one caller inside a service a charge was counted under.
type Principal struct {
	From  string // the policy's source: claude_code.user, header:x-customer-id, ...
	Value string // as stored
}
