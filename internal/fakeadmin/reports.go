package fakeadmin

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/meter"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// bucketRule is one bucket width's size and page limits.
type bucketRule struct {
	size       time.Duration
	def, limit int
}

var usageBuckets = map[string]bucketRule{
	"1m": {time.Minute, 60, 1440},
	"1h": {time.Hour, 24, 168},
	"1d": {24 * time.Hour, 7, 31},
}

// window reads starting_at, ending_at, bucket_width, limit and page: the
// buckets of this page and whether more follow.
func window(r *http.Request, rules map[string]bucketRule, defWidth string) (starts []time.Time, size time.Duration, more bool, next string, msg string) {
	q := r.URL.Query()
	width := q.Get("bucket_width")
	if width == "" {
		width = defWidth
	}
	rule, ok := rules[width]
	if !ok {
		return nil, 0, false, "", "bucket_width: unsupported value " + strconv.Quote(width)
	}
	from, err := time.Parse(time.RFC3339, q.Get("starting_at"))
	if err != nil {
		return nil, 0, false, "", "starting_at: required, an RFC 3339 timestamp"
	}
	from = from.UTC().Truncate(rule.size)
	to := from.Add(time.Duration(rule.limit) * rule.size)
	if e := q.Get("ending_at"); e != "" {
		if to, err = time.Parse(time.RFC3339, e); err != nil || !to.After(from) {
			return nil, 0, false, "", "ending_at: must be an RFC 3339 timestamp after starting_at"
		}
	}
	limit := rule.def
	if l := q.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > rule.limit {
			return nil, 0, false, "", fmt.Sprintf("limit: must be between 1 and %d for bucket_width %s", rule.limit, width)
		}
	}
	at := from
	if p := q.Get("page"); p != "" {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(p, "page_"))
		if err == nil {
			at, err = time.Parse(time.RFC3339, string(b))
		}
		if err != nil || at.Before(from) {
			return nil, 0, false, "", "page: invalid cursor"
		}
	}
	for ; at.Before(to) && len(starts) < limit; at = at.Add(rule.size) {
		starts = append(starts, at)
	}
	if at.Before(to) {
		more, next = true, "page_"+base64.RawURLEncoding.EncodeToString([]byte(at.Format(time.RFC3339)))
	}
	return starts, rule.size, more, next, ""
}

func (s *Server) serveUsage(w http.ResponseWriter, r *http.Request) {
	groups, msg := groupBy(r, "api_key_id", "workspace_id", "model", "service_tier", "context_window", "inference_geo", "speed")
	if msg == "" && groups["speed"] && !strings.Contains(r.Header.Get("Anthropic-Beta"), "fast-mode") {
		msg = "group_by: speed requires the fast-mode beta header"
	}
	starts, size, more, next, wmsg := window(r, usageBuckets, "1d")
	if msg == "" {
		msg = wmsg
	}
	if msg != "" {
		writeErr(w, http.StatusBadRequest, "invalid_request_error", msg)
		return
	}
	all, _, _ := s.snapshot()
	dim := func(on bool, v string) any {
		if !on || v == "" {
			return nil
		}
		return v
	}
	data := make([]any, 0, len(starts))
	for _, st := range starts {
		end := st.Add(size)
		rows := map[string]map[string]any{}
		var order []string
		for _, u := range all {
			if u.At.Before(st) || !u.At.Before(end) {
				continue
			}
			row := map[string]any{
				"api_key_id": dim(groups["api_key_id"], u.APIKeyID), "workspace_id": dim(groups["workspace_id"], u.WorkspaceID),
				"model": dim(groups["model"], u.Model), "service_tier": dim(groups["service_tier"], tierOf(u)),
				"context_window": dim(groups["context_window"], "0-200k"), "inference_geo": dim(groups["inference_geo"], geoOf(u)),
			}
			if groups["speed"] {
				row["speed"] = speedOf(u)
			}
			k, _ := json.Marshal(row)
			acc, ok := rows[string(k)]
			if !ok {
				acc = row
				acc["uncached_input_tokens"] = int64(0)
				acc["cache_creation"] = map[string]int64{"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}
				acc["cache_read_input_tokens"] = int64(0)
				acc["output_tokens"] = int64(0)
				acc["server_tool_use"] = map[string]int64{"web_search_requests": 0}
				rows[string(k)] = acc
				order = append(order, string(k))
			}
			t := u.Tokens
			c5, c1 := split(t)
			acc["uncached_input_tokens"] = acc["uncached_input_tokens"].(int64) + t.InputTokens
			cc := acc["cache_creation"].(map[string]int64)
			cc["ephemeral_5m_input_tokens"] += c5
			cc["ephemeral_1h_input_tokens"] += c1
			acc["cache_read_input_tokens"] = acc["cache_read_input_tokens"].(int64) + t.CacheRead
			acc["output_tokens"] = acc["output_tokens"].(int64) + t.OutputTokens
			acc["server_tool_use"].(map[string]int64)["web_search_requests"] += t.WebSearch
		}
		results := make([]any, 0, len(order))
		for _, k := range order {
			results = append(results, rows[k])
		}
		data = append(data, map[string]any{"starting_at": st.Format(time.RFC3339), "ending_at": end.Format(time.RFC3339), "results": results})
	}
	writePage(w, data, more, next)
}

// split is the 5m/1h division of cache writes as the fake upstream
// reports it.
func split(u fakeupstream.Usage) (int64, int64) {
	if u.Cache5m == 0 && u.Cache1h == 0 {
		return u.CacheCreation, 0
	}
	return u.Cache5m, u.Cache1h
}

var costBuckets = map[string]bucketRule{"1d": {24 * time.Hour, 7, 31}}

// components names cost report rows: token_type and the description's tail.
var components = []struct {
	comp      pricing.Component
	tokenType string
	what      string
}{
	{pricing.Input, "uncached_input_tokens", "Input Tokens"},
	{pricing.Output, "output_tokens", "Output Tokens"},
	{pricing.CacheWrite5m, "cache_creation.ephemeral_5m_input_tokens", "Cache Write (5m)"},
	{pricing.CacheWrite1h, "cache_creation.ephemeral_1h_input_tokens", "Cache Write (1h)"},
	{pricing.CacheRead, "cache_read_input_tokens", "Cache Read"},
}

func (s *Server) serveCost(w http.ResponseWriter, r *http.Request) {
	groups, msg := groupBy(r, "workspace_id", "description")
	starts, size, more, next, wmsg := window(r, costBuckets, "1d")
	if msg == "" {
		msg = wmsg
	}
	if msg != "" {
		writeErr(w, http.StatusBadRequest, "invalid_request_error", msg)
		return
	}
	all, costs, prices := s.snapshot()
	type row struct {
		fields map[string]any
		amount money.Nanos
	}
	data := make([]any, 0, len(starts))
	for _, st := range starts {
		end := st.Add(size)
		rows := map[string]*row{}
		var order []string
		add := func(ws, costType, desc, model, tier, tokenType string, amt money.Nanos) {
			f := map[string]any{"currency": "USD", "workspace_id": nil, "description": nil, "cost_type": nil,
				"context_window": nil, "model": nil, "service_tier": nil, "token_type": nil, "inference_geo": nil}
			if groups["workspace_id"] && ws != "" {
				f["workspace_id"] = ws
			}
			if groups["description"] {
				f["description"], f["cost_type"] = desc, costType
				if model != "" {
					f["model"], f["service_tier"], f["context_window"] = model, tier, "0-200k"
				}
				if tokenType != "" {
					f["token_type"] = tokenType
				}
			}
			k, _ := json.Marshal(f)
			rw, ok := rows[string(k)]
			if !ok {
				rw = &row{fields: f}
				rows[string(k)] = rw
				order = append(order, string(k))
			}
			rw.amount += amt
		}
		for _, u := range all {
			// Priority Tier is billed under its contract, not in this report.
			if u.At.Before(st) || !u.At.Before(end) || tierOf(u) == "priority" {
				continue
			}
			t := u.Tokens
			c5, c1 := split(t)
			cost, err := prices.Cost(meter.Usage{Model: u.Model, InputTokens: t.InputTokens, CacheCreationInputTokens: c5 + c1,
				CacheCreationSplit: true, CacheWrite5mTokens: c5, CacheWrite1hTokens: c1, CacheReadInputTokens: t.CacheRead,
				OutputTokens: t.OutputTokens, WebSearchRequests: t.WebSearch, ServiceTier: tierOf(u),
				InferenceGeo: geoOf(u), Speed: speedOf(u)}, u.At)
			if err != nil {
				writeErr(w, http.StatusInternalServerError, "api_error", err.Error())
				return
			}
			for _, c := range components {
				if v := cost.Components[c.comp]; v != 0 {
					add(u.WorkspaceID, "tokens", u.Model+" Usage - "+c.what, u.Model, tierOf(u), c.tokenType, v)
				}
			}
			if v := cost.Components[pricing.WebSearch]; v != 0 {
				add(u.WorkspaceID, "web_search", "Web Search", u.Model, tierOf(u), "", v)
			}
		}
		for _, c := range costs {
			if c.Day.Before(st) || !c.Day.Before(end) {
				continue
			}
			add(c.WorkspaceID, c.CostType, c.Description, "", "", "", c.Amount)
		}
		results := make([]any, 0, len(order))
		for _, k := range order {
			rw := rows[k]
			rw.fields["amount"] = cents(rw.amount)
			results = append(results, rw.fields)
		}
		data = append(data, map[string]any{"starting_at": st.Format(time.RFC3339), "ending_at": end.Format(time.RFC3339), "results": results})
	}
	writePage(w, data, more, next)
}

// cents writes nano-USD as a decimal string of cents (1 cent = 1e7 nano-USD),
// exact, without trailing zeros.
func cents(n money.Nanos) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := fmt.Sprintf("%d.%07d", n/10_000_000, n%10_000_000)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if neg {
		s = "-" + s
	}
	return s
}

func writePage(w http.ResponseWriter, data []any, more bool, next string) {
	var np any
	if more {
		np = next
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "has_more": more, "next_page": np})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("request-id", "req_fakeadmin")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeErr(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}})
}
