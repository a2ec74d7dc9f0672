package proxy

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// requestBounds is what a Messages body says about its cost beyond its
// model, size and max_tokens: what the admission estimate must add so that
// it stays an upper bound of the bill.
type requestBounds struct {
	// Pointer is why the body does not bound the prompt (content it only
	// points at); "" when it does. The prompt is then bounded by the
	// model's context window.
	Pointer string
	// ServerSide: something grows input or output on the server side
	// (server tools, MCP servers, container uploads, skills, compaction).
	ServerSide bool
	// UnknownTools lists tool types the gateway does not know.
	UnknownTools []string
	// ExtraPromptTokens is the documented prompt overhead of the client
	// tools declared (bash, text editor, computer use).
	ExtraPromptTokens int64
	// GeoDefault: the request does not name inference_geo, so the
	// workspace's default applies, which may be "us".
	GeoDefault bool
	// Fallbacks are the server-side fallback models, in order; each runs
	// only after the previous attempt was refused, and each attempt bills.
	Fallbacks []modelUse
	// Advisors are advisor tools: another model called up to Uses times.
	Advisors []modelUse
	// WebSearches is the most web searches the request can bill: the sum
	// of its web search tools' max_uses, or -1 when one has none.
	WebSearches int64
}

// modelUse is another model a request can make the API use.
type modelUse struct {
	Model     string
	MaxTokens int64
	Fast      bool
	Uses      int64
}

// Models returns every model the request can make the API use besides
// its top-level model.
// SingleModel reports whether the request can make the API use its
// top-level model alone, so that max_tokens bounds all of its output.
func (b requestBounds) SingleModel() bool {
	return len(b.Fallbacks) == 0 && len(b.Advisors) == 0
}

func (b requestBounds) Models() []string {
	var out []string
	for _, u := range b.Fallbacks {
		out = append(out, u.Model)
	}
	for _, u := range b.Advisors {
		out = append(out, u.Model)
	}
	return out
}

// topLevelFields are the members of a Messages body the gateway reads or
// that change what the API bills; their keys must be written exactly.
var topLevelFields = []string{"model", "max_tokens", "stream", "inference_geo", "speed", "tools",
	"mcp_servers", "messages", "system", "fallbacks", "container", "context_management", "service_tier"}

// Tool types by what they cost beyond the body. The list is exact, not by
// prefix: a new version of a tool may bill differently, so it is unknown
// until the gateway learns it (or unknown_tools: allow).
var (
	clientToolOverhead = map[string]int64{
		// Input tokens the API adds for the tool (pricing page, server and
		// client tools); computer use rounded up from "about 4,500".
		"bash_20241022": 325, "bash_20250124": 325,
		"text_editor_20241022": 700, "text_editor_20250124": 700, "text_editor_20250429": 700, "text_editor_20250728": 700,
		"computer_20241022": 5000, "computer_20250124": 5000, "computer_20251124": 5000,
		"memory_20250818": 0, "custom": 0,
	}
	serverToolTypes = map[string]bool{
		"web_search_20250305": true, "web_search_20260209": true, "web_search_20260318": true,
		"web_fetch_20250910": true, "web_fetch_20260209": true, "web_fetch_20260309": true, "web_fetch_20260318": true,
		"code_execution_20250522": true, "code_execution_20250825": true, "code_execution_20260120": true, "code_execution_20260521": true,
		"tool_search_tool_bm25_20251119": true, "tool_search_tool_bm25": true,
		"tool_search_tool_regex_20251119": true, "tool_search_tool_regex": true,
		"mcp_toolset": true,
	}
	advisorToolTypes = map[string]bool{"advisor_20260301": true}
)

// parseBounds reads the parts of a Messages body that bound its cost from
// what checkDuplicates' walk found (the body is a valid JSON object with
// no duplicate keys). maxTokens is the request's.
func parseBounds(bs bodyScan, maxTokens int64) (requestBounds, error) {
	top, scan := bs.top, bs.content
	if err := checkKeys(top, "", topLevelFields...); err != nil {
		return requestBounds{}, err
	}
	var b requestBounds
	if raw := find(top, "model"); raw != nil {
		if _, err := plainString(raw, "model"); err != nil {
			return b, err
		}
	}
	if raw := find(top, "max_tokens"); !isNull(raw) {
		if _, err := plainCount(raw, "max_tokens"); err != nil {
			return b, err
		}
	}
	for _, f := range []string{"inference_geo", "speed"} {
		if raw := find(top, f); !isNull(raw) {
			if _, err := plainString(raw, f); err != nil {
				return b, err
			}
		}
	}
	b.GeoDefault = isNull(find(top, "inference_geo"))
	b.Pointer, b.ServerSide = scan.pointer, scan.serverSide
	if raw := find(top, "tools"); !isNull(raw) {
		if err := b.tools(raw); err != nil {
			return b, err
		}
	}
	if raw := find(top, "fallbacks"); !isNull(raw) {
		if err := b.fallbacks(raw, maxTokens); err != nil {
			return b, err
		}
	}
	if raw := find(top, "mcp_servers"); !isNull(raw) && string(raw) != "[]" {
		b.ServerSide = true
	}
	if raw := find(top, "context_management"); !isNull(raw) {
		b.ServerSide = true // compaction runs another sampling iteration
	}
	if raw := find(top, "container"); len(raw) > 0 && raw[0] == '{' {
		if ms, ok := objectMembers(raw); ok {
			if sk := find(ms, "skills"); !isNull(sk) && string(sk) != "[]" {
				// Skills are files loaded into the container server-side.
				b.ServerSide = true
				if b.Pointer == "" {
					b.Pointer = "skills loaded into the container"
				}
			}
		}
	}
	return b, nil
}

func (b *requestBounds) tools(raw []byte) error {
	i := 0
	var err error
	ok := arrayElements(raw, func(t []byte) {
		defer func() { i++ }()
		if err != nil {
			return
		}
		ms, ok := objectMembers(t)
		if !ok {
			return // not an object: the API refuses the request, nothing bills
		}
		where := fmt.Sprintf("tools[%d].", i)
		if err = checkKeys(ms, where, "type", "model", "max_tokens", "max_uses"); err != nil {
			return
		}
		typ := "custom"
		if r := find(ms, "type"); !isNull(r) {
			if typ, err = plainString(r, where+"type"); err != nil {
				return
			}
		}
		switch {
		case serverToolTypes[typ]:
			b.ServerSide = true
			if strings.HasPrefix(typ, "web_search_") && b.WebSearches >= 0 {
				r := find(ms, "max_uses")
				if isNull(r) {
					b.WebSearches = -1
					return
				}
				var n int64
				if n, err = plainCount(r, where+"max_uses"); err != nil {
					return
				}
				b.WebSearches = min(b.WebSearches+n, math.MaxInt32)
			}
		case advisorToolTypes[typ]:
			err = b.advisor(ms, where)
		default:
			n, known := clientToolOverhead[typ]
			if !known {
				b.UnknownTools = append(b.UnknownTools, typ)
				return
			}
			b.ExtraPromptTokens += n
		}
	})
	if err != nil {
		return err
	}
	if !ok {
		return errBadRequest("tools: must be an array", nil)
	}
	return nil
}

// advisor reads an advisor tool: another model the executor calls, each
// call billed at the advisor's rates. The gateway needs both max_uses and
// max_tokens to bound it; without them the advisor's calls and output are
// bounded only by defaults the API does not publish, so it refuses.
func (b *requestBounds) advisor(ms []member, where string) error {
	model, err := plainString(find(ms, "model"), where+"model")
	if err != nil {
		return err
	}
	u := modelUse{Model: model}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"max_uses", &u.Uses}, {"max_tokens", &u.MaxTokens}} {
		raw := find(ms, f.name)
		if isNull(raw) {
			return errUnbounded(fmt.Sprintf("%s%s is required at this gateway: without it the advisor's cost has no bound the gateway can hold against the budget", where, f.name))
		}
		if *f.dst, err = plainCount(raw, where+f.name); err != nil {
			return err
		}
	}
	b.Advisors = append(b.Advisors, u)
	return nil
}

func (b *requestBounds) fallbacks(raw []byte, maxTokens int64) error {
	i := 0
	var err error
	ok := arrayElements(raw, func(f []byte) {
		defer func() { i++ }()
		if err != nil {
			return
		}
		where := fmt.Sprintf("fallbacks[%d].", i)
		ms, ok := objectMembers(f)
		if !ok {
			err = errBadRequest(fmt.Sprintf("fallbacks[%d]: must be an object", i), nil)
			return
		}
		if err = checkKeys(ms, where, "model", "max_tokens", "speed"); err != nil {
			return
		}
		u := modelUse{MaxTokens: maxTokens, Uses: 1}
		if u.Model, err = plainString(find(ms, "model"), where+"model"); err != nil {
			return
		}
		if r := find(ms, "max_tokens"); !isNull(r) {
			if u.MaxTokens, err = plainCount(r, where+"max_tokens"); err != nil {
				return
			}
		}
		if r := find(ms, "speed"); !isNull(r) {
			var s string
			if s, err = plainString(r, where+"speed"); err != nil {
				return
			}
			u.Fast = s == "fast"
		}
		b.Fallbacks = append(b.Fallbacks, u)
	})
	if err != nil {
		return err
	}
	if !ok {
		return errBadRequest("fallbacks: must be an array", nil)
	}
	return nil
}

// checkBounds applies the policy to what the body says: every other model
// must pass the service's allowlist, and an unknown tool type is refused
// unless the policy allows it.
func checkBounds(s *State, svc *policy.Service, b requestBounds) error {
	for _, m := range b.Models() {
		if !modelAllowed(svc, m) {
			return errModelNotAllowed(svc.Name, m, svc.Models)
		}
	}
	if len(b.UnknownTools) > 0 && s.Policy.UnknownTools != policy.UnknownToolsAllow {
		types := append([]string(nil), b.UnknownTools...)
		sort.Strings(types)
		return errUnknownTool(quoteShort(types[0]))
	}
	return nil
}

// estimateAll is the admission estimate of a Messages request: the
// request at its own model, plus every fallback attempt (each bills when
// the one before it is refused, so the worst case is all of them), plus
// every advisor call (the advisor reads the conversation, so its prompt
// is bounded by its context window). A model the table cannot price fails
// with the model's name.
func estimateAll(s *State, p parsedRequest, promptBytes int64, batch bool, at time.Time) (money.Nanos, string, error) {
	base := estimateRequest(s, p, promptBytes)
	base.Batch = batch
	total, err := s.Prices.Estimate(base, at)
	if err != nil {
		return 0, p.Model, err
	}
	add := func(r pricing.Request, times int64) error {
		n, err := s.Prices.Estimate(r, at)
		if err != nil {
			return err
		}
		if times > 0 && n > 0 && times > (math.MaxInt64-int64(total))/int64(n) {
			return fmt.Errorf("%w: estimate of %d uses of %q", pricing.ErrOutOfRange, times, r.Model)
		}
		total += money.Nanos(times * int64(n))
		return nil
	}
	for _, f := range p.Bounds.Fallbacks {
		r := base
		r.Model, r.MaxTokens, r.Fast = f.Model, f.MaxTokens, f.Fast
		if err := add(r, 1); err != nil {
			return 0, f.Model, err
		}
	}
	for _, a := range p.Bounds.Advisors {
		r := base
		r.Model, r.MaxTokens, r.Fast, r.ContextBound = a.Model, a.MaxTokens, false, true
		r.ServerTools, r.Allowance = false, 0
		if err := add(r, a.Uses); err != nil {
			return 0, a.Model, err
		}
	}
	return total, "", nil
}
