package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// The gateway process writes one request line per request to its JSON log,
// with the fields operators search by, and the same request ID as the
// request's spend record.
func TestProcessLogsARequestLinePerRequest(t *testing.T) {
	_, up := startUpstream(t)
	e := env(t, up.URL, basePolicy(testpolicy.Daily("50")))
	gw := testutil.StartProcess(t, testutil.BuildBinary(t), e)
	c := anthropic.NewClient(option.WithBaseURL(gw.URL), option.WithAPIKey(testutil.CanaryToken))
	params := anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 300, Messages: userMsg("log me")}
	if _, err := c.Messages.New(context.Background(), params); err != nil {
		t.Fatal(err)
	}
	stream := c.Messages.NewStreaming(context.Background(), params)
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}

	type line struct {
		Level, Logger, Msg, Ts                 string
		RequestID                              string `json:"request_id"`
		Service, Team, Workspace, Model, Route string
		Status                                 int
		Duration                               float64
		UpstreamRequestID                      string `json:"upstream_request_id"`
		Stream                                 *bool
		CostUSD                                string `json:"cost_usd"`
		TotalUSD                               string `json:"total_usd"` // the spend record's
	}
	read := func(log, msg string) []line {
		var out []line
		sc := bufio.NewScanner(strings.NewReader(log))
		for sc.Scan() {
			var l line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("log line is not JSON: %q", sc.Text())
			}
			if l.Msg == msg {
				out = append(out, l)
			}
		}
		return out
	}
	reqs, spends := read(gw.Logs.String(), "request"), read(gw.Spend.String(), "spend")
	if len(reqs) != 2 || len(spends) != 2 {
		t.Fatalf("%d request lines and %d spend records for 2 requests; log:\n%s", len(reqs), len(spends), gw.Logs.String())
	}
	for i, r := range reqs {
		if r.Level != "info" || r.Logger != "proxy" || r.Ts == "" || r.Service != "recommendation" || r.Team != "search" ||
			r.Model != "claude-sonnet-4-6" || r.Route != "messages" || r.Status != 200 || r.Duration <= 0 ||
			r.UpstreamRequestID == "" || r.Stream == nil || *r.Stream != (i == 1) || r.CostUSD == "" || r.CostUSD != spends[i].TotalUSD {
			t.Errorf("request line %d: %+v", i, r)
		}
		if r.RequestID == "" || r.RequestID != spends[i].RequestID {
			t.Errorf("request line %d has request_id %q, its spend record %q", i, r.RequestID, spends[i].RequestID)
		}
	}
}
