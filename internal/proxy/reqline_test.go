package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/jsonline/jsonlinetest"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// requestLines logs c's request line once through zap, as the gateway's
// JSON log writes it, and once by hand through RequestLog.
func requestLines(c *call, o outcome, ch charge, end time.Time) (viaZap, byHand []byte) {
	var zapOut, handOut bytes.Buffer
	log := jsonlinetest.Logger(&zapOut, end)
	(&Handler{log: log.Named("proxy")}).logRequest(c, o, ch, end)
	(&Handler{log: log.Named("proxy"), o: Options{RequestLog: &handOut}}).logRequest(c, o, ch, end)
	return zapOut.Bytes(), handOut.Bytes()
}

func TestRequestLineIsZapsLine(t *testing.T) {
	end := time.Date(2026, 12, 8, 9, 30, 0, 120000000, time.FixedZone("CET", 3600))
	odd := "q\"b\\s\n\r\t\x01 é 日本 \xff <&> \u2028"
	svc := &policy.Service{Name: "recommendation", Team: &policy.Team{Name: "search"}, Workspace: &policy.Workspace{Name: "production"}}
	var cost pricing.Cost
	cost.Total = 8_100_000
	for name, edit := range map[string]func(*call, *charge){
		"metered stream": func(*call, *charge) {},
		"charged by":     func(_ *call, ch *charge) { ch.cause = "interrupted_stream" },
		"unmetered":      func(c *call, _ *charge) { c.metered, c.route, c.stream = false, routeCountTokens, false },
		"before auth":    func(c *call, _ *charge) { c.svc, c.service, c.model, c.status = nil, "unknown", "", 401 },
		"odd strings":    func(c *call, _ *charge) { c.model, c.upstreamID, c.id = odd+odd+odd+odd+odd, odd, "" },
		"long duration":  func(c *call, _ *charge) { c.start = end.Add(-90*time.Minute - 7) },
	} {
		c := &call{id: "req_clade_01", start: end.Add(-50824585), svc: svc, service: svc.Name, route: routeMessages,
			model: "claude-sonnet-4-6", status: 200, upstreamID: "req_up", stream: true, metered: true}
		ch := charge{cost: cost}
		edit(c, &ch)
		viaZap, byHand := requestLines(c, outcomeStream{}, ch, end)
		if !bytes.Equal(byHand, viaZap) {
			t.Errorf("%s:\n got %s\nwant %s", name, byHand, viaZap)
		}
		if !json.Valid(byHand) {
			t.Errorf("%s: not JSON: %s", name, byHand)
		}
	}
}

func TestRequestLineWithBodyErrorGoesThroughZap(t *testing.T) {
	end := time.Date(2026, 12, 8, 9, 30, 0, 0, time.UTC)
	c := &call{id: "req_clade_02", start: end, service: "s", route: routeMessages, status: 200, metered: true}
	viaZap, byHand := requestLines(c, outcomeStream{err: errors.New("connection reset")}, charge{}, end)
	if len(byHand) != 0 {
		t.Errorf("a line with a body error was built by hand: %s", byHand)
	}
	lines := bytes.SplitAfter(viaZap, []byte("\n"))
	if len(lines) != 3 || !bytes.Equal(lines[0], lines[1]) || !bytes.Contains(lines[0], []byte(`"body_error":"connection reset"`)) {
		t.Errorf("zap's log holds %q, want the line with its body_error twice", viaZap)
	}
}
