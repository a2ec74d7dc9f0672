package adminapi

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// Page sizes: the most buckets the API returns per page at each width.
const (
	maxHourBuckets = 168
	maxDayBuckets  = 31
)

// UsageRow is one hourly bucket's usage for one combination of the
// grouped dimensions. An empty APIKeyID is usage without a key (Console,
// Workbench); an empty WorkspaceID is the default workspace.
type UsageRow struct {
	Hour         time.Time
	APIKeyID     string
	WorkspaceID  string
	Model        string
	ServiceTier  string
	InferenceGeo string
	Speed        string

	UncachedInput int64
	CacheWrite5m  int64
	CacheWrite1h  int64
	CacheRead     int64
	Output        int64
	WebSearch     int64
}

type usageResult struct {
	APIKeyID      *string `json:"api_key_id"`
	WorkspaceID   *string `json:"workspace_id"`
	Model         *string `json:"model"`
	ServiceTier   *string `json:"service_tier"`
	InferenceGeo  *string `json:"inference_geo"`
	Speed         *string `json:"speed"`
	Uncached      int64   `json:"uncached_input_tokens"`
	CacheCreation struct {
		M5 int64 `json:"ephemeral_5m_input_tokens"`
		H1 int64 `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
	CacheRead     int64 `json:"cache_read_input_tokens"`
	Output        int64 `json:"output_tokens"`
	ServerToolUse struct {
		WebSearch int64 `json:"web_search_requests"`
	} `json:"server_tool_use"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Usage returns hourly usage in [from, to), grouped by API key, workspace,
// model, service tier, inference geo and speed: every dimension that
// changes a price.
func (c *Client) Usage(ctx context.Context, from, to time.Time) ([]UsageRow, error) {
	var out []UsageRow
	q := url.Values{}
	q.Set("starting_at", from.UTC().Format(time.RFC3339))
	q.Set("ending_at", to.UTC().Format(time.RFC3339))
	q.Set("bucket_width", "1h")
	q.Set("limit", strconv.Itoa(maxHourBuckets))
	for _, g := range []string{"api_key_id", "workspace_id", "model", "service_tier", "inference_geo", "speed"} {
		q.Add("group_by[]", g)
	}
	err := fetchAll(ctx, c, "/v1/organizations/usage_report/messages", q, fastBeta, func(start time.Time, r usageResult) {
		out = append(out, UsageRow{
			Hour: start, APIKeyID: str(r.APIKeyID), WorkspaceID: str(r.WorkspaceID), Model: str(r.Model),
			ServiceTier: str(r.ServiceTier), InferenceGeo: str(r.InferenceGeo), Speed: str(r.Speed),
			UncachedInput: r.Uncached, CacheWrite5m: r.CacheCreation.M5, CacheWrite1h: r.CacheCreation.H1,
			CacheRead: r.CacheRead, Output: r.Output, WebSearch: r.ServerToolUse.WebSearch,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("usage report: %w", err)
	}
	return out, nil
}

// CostRow is one day's cost for one workspace and description.
type CostRow struct {
	Day         time.Time
	WorkspaceID string
	Description string
	CostType    string // tokens, web_search, code_execution, ...
	Model       string
	ServiceTier string
	TokenType   string
	Amount      money.Nanos // USD
}

type costResult struct {
	Amount      string  `json:"amount"`
	Currency    string  `json:"currency"`
	WorkspaceID *string `json:"workspace_id"`
	Description *string `json:"description"`
	CostType    *string `json:"cost_type"`
	Model       *string `json:"model"`
	ServiceTier *string `json:"service_tier"`
	TokenType   *string `json:"token_type"`
}

// Costs returns daily costs in [from, to), grouped by workspace and
// description (which also fills cost type, model and token type).
func (c *Client) Costs(ctx context.Context, from, to time.Time) ([]CostRow, error) {
	var out []CostRow
	var bad error
	q := url.Values{}
	q.Set("starting_at", from.UTC().Format(time.RFC3339))
	q.Set("ending_at", to.UTC().Format(time.RFC3339))
	q.Set("bucket_width", "1d")
	q.Set("limit", strconv.Itoa(maxDayBuckets))
	q.Add("group_by[]", "workspace_id")
	q.Add("group_by[]", "description")
	err := fetchAll(ctx, c, "/v1/organizations/cost_report", q, "", func(start time.Time, r costResult) {
		amt, err := ParseCents(r.Amount)
		if err == nil && r.Currency != "" && r.Currency != "USD" {
			err = fmt.Errorf("currency %q is not USD", r.Currency)
		}
		if err != nil {
			bad = err
			return
		}
		out = append(out, CostRow{Day: start, WorkspaceID: str(r.WorkspaceID), Description: str(r.Description),
			CostType: str(r.CostType), Model: str(r.Model), ServiceTier: str(r.ServiceTier), TokenType: str(r.TokenType), Amount: amt})
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return nil, fmt.Errorf("cost report: %w", err)
	}
	return out, nil
}

// ParseCents reads a decimal string of cents ("123.78912") as nano-USD.
// A cent is 1e7 nano-USD, so seven fraction digits are exact; further
// digits round half up.
func ParseCents(s string) (money.Nanos, error) {
	orig := s
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || strings.Trim(whole, "0123456789") != "" || strings.Trim(frac, "0123456789") != "" || len(whole) > 15 {
		return 0, fmt.Errorf("amount %q is not a decimal number of cents", orig)
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	n := w * 10_000_000
	round := false
	if len(frac) > 7 {
		round = frac[7] >= '5'
		frac = frac[:7]
	}
	frac += strings.Repeat("0", 7-len(frac))
	f, _ := strconv.ParseInt(frac, 10, 64)
	n += f
	if round {
		n++
	}
	if neg {
		n = -n
	}
	return money.Nanos(n), nil
}
