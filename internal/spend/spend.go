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
	series        sync.Map            // seriesKey → *seriesSet
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
	ss := r.seriesOf(rec)
	ss.mu.Lock()
	var spent money.Nanos
	var input, output int64
	for i := range pricing.NumComponents {
		comp := pricing.Component(i)
		if v := rec.Cost.Components[comp]; v != 0 {
			spent += v
			ss.componentCost(r, rec, int(comp)).Add(v.Float())
		}
		n := rec.Cost.Tokens[comp]
		if n == 0 {
			continue
		}
		ss.tokens(r, rec, comp).Add(float64(n))
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
		ss.componentCost(r, rec, pricing.NumComponents).Add(extra.Float())
	}
	// The per-service counter takes the components' sum, as the sum of the
	// component series always did, so spend by service reads the same
	// whichever family a query uses.
	if spent != 0 {
		if !ss.cost.Found() {
			ss.cost = r.cost.Counter(rec.Service, rec.Team, rec.Workspace, rec.ModelLabel)
		}
		ss.cost.Add(spent.Float())
	}
	if input != 0 {
		if !ss.input.Found() {
			ss.input = r.serviceTokens.Counter(rec.Service, rec.Team, rec.Workspace, "input")
		}
		ss.input.Add(float64(input))
	}
	if output != 0 {
		if !ss.output.Found() {
			ss.output = r.serviceTokens.Counter(rec.Service, rec.Team, rec.Workspace, "output")
		}
		ss.output.Add(float64(output))
	}
	ss.mu.Unlock()
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

// seriesKey names the series one record adds to.
type seriesKey struct{ service, team, workspace, model string }

// seriesSet holds the series of one seriesKey, each found the first time
// it is added to: a series is created (and exported) only when it has
// something to count, as Add on the family would.
type seriesSet struct {
	mu            sync.Mutex
	cost          promtable.Counter
	input, output promtable.Counter
	components    [pricing.NumComponents + 1]promtable.Counter // the last: "estimate"
	tokenKinds    [pricing.NumComponents]promtable.Counter
}

// seriesOf returns the series set of rec's service, team, workspace and
// model. Every record looked its series up by label values before: eight
// lookups per request where there is now one. The set is bounded as the
// families are: by services and the models each uses.
func (r *Recorder) seriesOf(rec Record) *seriesSet {
	k := seriesKey{rec.Service, rec.Team, rec.Workspace, rec.ModelLabel}
	if v, ok := r.series.Load(k); ok {
		return v.(*seriesSet)
	}
	v, _ := r.series.LoadOrStore(k, new(seriesSet))
	return v.(*seriesSet)
}

// componentCost is the cost series of component i, i == NumComponents
// being "estimate". Called under ss.mu.
func (ss *seriesSet) componentCost(r *Recorder, rec Record, i int) promtable.Counter {
	if !ss.components[i].Found() {
		name := "estimate"
		if i < pricing.NumComponents {
			name = pricing.Component(i).String()
		}
		ss.components[i] = r.componentCost.Counter(rec.Workspace, rec.ModelLabel, name)
	}
	return ss.components[i]
}

// tokens is the component's token series. Called under ss.mu.
func (ss *seriesSet) tokens(r *Recorder, rec Record, comp pricing.Component) promtable.Counter {
	if !ss.tokenKinds[comp].Found() {
		ss.tokenKinds[comp] = r.tokens.Counter(rec.Workspace, rec.ModelLabel, comp.String())
	}
	return ss.tokenKinds[comp]
}
