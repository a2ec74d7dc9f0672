package reliability

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// hostileCase is one request built to trick the gateway.
type hostileCase struct {
	name string
	// raw is sent as is over a TCP connection when set; otherwise build
	// makes the request for an http.Client.
	raw   string
	build func(url string) *http.Request
	// want is the status the client must get. A 200 must reach the
	// upstream cleaned (see checkForwarded); anything else must not reach
	// it at all.
	want     int
	wantText string // in the body, for refusals
}

// Scenario 8: hostile and malformed input. Smuggled or spoofed headers and
// hosts are forwarded cleaned (the upstream sees only its configured host
// and the workspace key); oversized, malformed and incomplete bodies,
// upgrades, bad paths and bad tokens are refused before anything is
// reserved or forwarded; a slowloris client is cut off at the header
// timeout; a revoked token stops working on reload.
func TestReliabilityHostileInput(t *testing.T) {
	r := newRow(t, "8. Hostile and bad input (smuggling, spoofing, limits, slowloris, tokens)")
	const maxBody = 64 << 10
	rd := startRedis(t)
	f, up := startUpstream(t)
	upHost := strings.TrimPrefix(up.URL, "http://")
	env := gatewayEnv(t, up.URL, policySpec{}, rd.URL(), map[string]string{
		"CLADE_READ_HEADER_TIMEOUT": "1s",
		"CLADE_MAX_BODY_BYTES":      fmt.Sprint(maxBody),
	})
	gw := testutil.StartApp(t, env)
	gwAddr := strings.TrimPrefix(gw.URL, "http://")
	c := newClient(t, 10*time.Second)
	good := messageBody(300, false)
	withBody := func(body string, hdr ...string) func(string) *http.Request {
		return func(url string) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, url+"/v1/messages", strings.NewReader(body))
			req.Header.Set("content-type", "application/json")
			req.Header.Set("x-api-key", testutil.CanaryToken)
			for i := 0; i+1 < len(hdr); i += 2 {
				if hdr[i+1] == "" {
					req.Header.Del(hdr[i])
					continue
				}
				req.Header.Add(hdr[i], hdr[i+1])
			}
			return req
		}
	}
	sameLen := "clade_sk_" + strings.Repeat("Z", len(testutil.CanaryToken)-len("clade_sk_"))
	cases := []hostileCase{
		{name: "Connection names x-api-key", build: withBody(good, "Connection", "x-api-key"), want: 200},
		{name: "Connection names Authorization", build: withBody(good, "X-Api-Key", "", "Authorization", "Bearer "+testutil.CanaryToken, "Connection", "Authorization"), want: 200},
		{name: "duplicate equal x-api-key", build: withBody(good, "X-Api-Key", testutil.CanaryToken), want: 200},
		{name: "spoofed forwarding headers", build: withBody(good, "X-Forwarded-For", "6.6.6.6", "X-Forwarded-Host", "evil.example",
			"Forwarded", "for=6.6.6.6;host=evil.example", "Anthropic-Workspace-Id", "wrkspc_evil"), want: 200},
		{name: "Host header aims elsewhere", build: func(url string) *http.Request {
			req := withBody(good)(url)
			req.Host = "evil.example"
			return req
		}, want: 200},
		{name: "absolute URI aims elsewhere", raw: rawPost("http://evil.example/v1/messages", "evil.example", testutil.CanaryToken, good), want: 200},
		{name: "duplicate different x-api-key", build: withBody(good, "X-Api-Key", testutil.OtherToken), want: 401, wantText: "conflicting credentials"},
		{name: "Upgrade h2c", build: withBody(good, "Connection", "Upgrade", "Upgrade", "h2c"), want: 400, wantText: "upgrades"},
		{name: "dot segments toward the Admin API", raw: rawPost("/v1/messages/../organizations/usage_report", gwAddr, testutil.CanaryToken, good), want: 0},
		{name: "body over the limit", build: withBody(`{"model":"` + model + `","max_tokens":16,"messages":[{"role":"user","content":"` + strings.Repeat("a", maxBody) + `"}]}`), want: 413, wantText: "exceeds"},
		{name: "chunked body over the limit", build: func(url string) *http.Request {
			req := withBody("")(url)
			req.Body = io.NopCloser(io.MultiReader(strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"`),
				strings.NewReader(strings.Repeat("b", maxBody)), strings.NewReader(`"}],"max_tokens":16}`)))
			req.ContentLength = -1
			return req
		}, want: 413, wantText: "exceeds"},
		{name: "malformed JSON", build: withBody(`{"model":"` + model + `","max_tokens":16,"messages":[`), want: 400, wantText: "not valid JSON"},
		{name: "missing model", build: withBody(`{"max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`), want: 400, wantText: "model: field required"},
		{name: "missing max_tokens", build: withBody(`{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]}`), want: 400, wantText: "max_tokens: field required"},
		{name: "unknown token, same length", build: withBody(good, "X-Api-Key", "", "X-Api-Key", sameLen), want: 401, wantText: "not a service token of this gateway"},
		{name: "unknown token, other length", build: withBody(good, "X-Api-Key", "", "X-Api-Key", "clade_sk_short"), want: 401, wantText: "not a service token of this gateway"},
		{name: "no token", build: withBody(good, "X-Api-Key", ""), want: 401, wantText: "no credentials"},
	}

	var bodies strings.Builder
	unauthorized := map[string]string{} // case -> body with its request id blanked
	forwarded := 0
	for _, tc := range cases {
		before := len(f.Requests())
		status, body := sendCase(t, c, gw.URL, gwAddr, tc)
		bodies.WriteString(body)
		after := f.Requests()
		switch {
		case tc.want == 200:
			if status != 200 || len(after) != before+1 {
				t.Errorf("%s: status %d, %d upstream requests; want 200 and one", tc.name, status, len(after)-before)
				continue
			}
			forwarded++
			checkForwarded(t, tc.name, after[len(after)-1], upHost)
		case tc.want == 0: // any refusal
			if status < 400 || len(after) != before {
				t.Errorf("%s: status %d, %d upstream requests; want a refusal and none", tc.name, status, len(after)-before)
			}
		default:
			if status != tc.want || !strings.Contains(body, tc.wantText) || len(after) != before {
				t.Errorf("%s: %d %s with %d upstream requests; want %d containing %q and none", tc.name, status, body, len(after)-before, tc.want, tc.wantText)
			}
		}
		// Unknown tokens of any length get the same answer: its wording
		// must not tell an attacker how close a guess came.
		if strings.HasPrefix(tc.name, "unknown token") {
			unauthorized[tc.name] = requestID.ReplaceAllString(body, `"request_id":"X"`)
		}
	}
	var first string
	for name, b := range unauthorized {
		if first == "" {
			first = b
		}
		if b != first {
			t.Errorf("401 bodies differ: %s: %s vs %s", name, b, first)
		}
	}
	// Nothing refused above may hold budget: only the forwarded requests
	// ever placed a hold, and all of them are settled.
	holds, err := rd.Client().Keys(context.Background(), "{clade}:hold:*").Result()
	if err != nil || len(holds) != forwarded {
		t.Errorf("Redis has %d hold records (err %v); only the %d forwarded requests may have one", len(holds), err, forwarded)
	}
	if lv, ok := waitBudget(t, gw.AdminURL, 5*time.Second, func(l budgetLevel) bool { return l.Reserved == 0 }); !ok {
		t.Errorf("reserved %s after the refusals, want 0", lv.Reserved)
	}

	cut, slowErr := slowloris(gwAddr, 100*time.Millisecond, 10*time.Second)
	if slowErr != nil || cut >= 5*time.Second {
		t.Errorf("slowloris: cut off after %v (%v); the header timeout is 1s", cut, slowErr)
	}

	revoked := revoke(t, c, gw, env["CLADE_CONFIG"], good)
	bodies.WriteString(revoked)

	before := len(f.Requests())
	lv, _ := waitBudget(t, gw.AdminURL, 5*time.Second, func(l budgetLevel) bool { return l.Reserved == 0 && l.Spent == truthCost(f) })
	recs := spendRecords(t, gw.Spend.String())
	m := scrape(t, gw.AdminURL)
	leaked := leaks(gw.Logs.String(), gw.Spend.String(), m, bodies.String()) + upstreamLeaks(f.Requests())
	assertNoPanic(t, "gateway logs", gw.Logs.String())

	r.Load = fmt.Sprintf("%d crafted requests + slowloris + revocation", len(cases))
	r.Faults = fmt.Sprintf("%d forwarded cleaned (smuggling, XFF, Host, absolute URI); %d refused before reserving; slowloris cut at %s",
		forwarded, len(cases)-forwarded, ms(cut))
	r.Unmetered = fmt.Sprint(f.Messages() - int64(len(recs)))
	r.Drift = nanos(lv.Spent - truthCost(f))
	r.Double = fmt.Sprint(doubleCharges(recs))
	r.Leaks = fmt.Sprint(leaked)
	r.Recovery = "n/a; revoked token refused on reload"
	if f.Messages() != int64(len(recs)) || lv.Spent != truthCost(f) || doubleCharges(recs) != 0 || leaked != 0 || before != len(f.Requests()) {
		t.Errorf("unmetered %s, drift %s, double %s, leaks %d", r.Unmetered, r.Drift, r.Double, leaked)
	}
}

var requestID = regexp.MustCompile(`"request_id":"[^"]*"`)

// rawPost is a whole HTTP/1.1 request with the request-target given.
func rawPost(target, host, token, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nx-api-key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		target, host, token, len(body), body)
}

func sendCase(t *testing.T, c *http.Client, url, addr string, tc hostileCase) (int, string) {
	t.Helper()
	if tc.raw == "" {
		resp, err := c.Do(tc.build(url))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Errorf("%s: %v", tc.name, err)
		return 0, ""
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, tc.raw); err != nil {
		t.Errorf("%s: %v", tc.name, err)
		return 0, ""
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Errorf("%s: %v", tc.name, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// checkForwarded asserts what the upstream saw of a forwarded request: its
// own host, the workspace key exactly once, no client credential, and no
// client-supplied forwarding or workspace headers.
func checkForwarded(t *testing.T, name string, s fakeupstream.Seen, upHost string) {
	t.Helper()
	if s.Host != upHost || s.Path != "/v1/messages" {
		t.Errorf("%s: upstream saw Host %q path %q, want %q /v1/messages", name, s.Host, s.Path, upHost)
	}
	if v := s.Header.Values("X-Api-Key"); len(v) != 1 || v[0] != testutil.CanaryKey {
		t.Errorf("%s: upstream x-api-key values: %d, workspace key: %t", name, len(v), len(v) == 1 && v[0] == testutil.CanaryKey)
	}
	for _, h := range []string{"Authorization", "Forwarded", "X-Forwarded-Host", "Anthropic-Workspace-Id"} {
		if v := s.Header.Get(h); v != "" {
			t.Errorf("%s: upstream saw %s: %q", name, h, v)
		}
	}
	for k, vs := range s.Header {
		for _, v := range vs {
			if strings.Contains(v, "6.6.6.6") || strings.Contains(v, "evil.example") {
				t.Errorf("%s: upstream saw %s: %q", name, k, v)
			}
		}
	}
}

// upstreamLeaks counts canaries in what the upstream received, except the
// one place the workspace key belongs: x-api-key.
func upstreamLeaks(seen []fakeupstream.Seen) int {
	n := 0
	for _, s := range seen {
		for k, vs := range s.Header {
			for _, v := range vs {
				if k == "X-Api-Key" && v == testutil.CanaryKey {
					continue
				}
				n += leaks(k + ": " + v)
			}
		}
		n += leaks(s.Path + "?" + s.RawQuery)
	}
	return n
}

// slowloris opens a connection and sends one header byte per interval. It
// returns how long the gateway let it live.
func slowloris(addr string, every, giveUp time.Duration) (time.Duration, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		_ = conn.SetReadDeadline(start.Add(giveUp))
		_, _ = io.Copy(io.Discard, conn) // returns when the server closes
		closed <- time.Since(start)
	}()
	header := "POST /v1/messages HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("s", 1000)
	for i := 0; i < len(header); i++ {
		if _, err := conn.Write([]byte{header[i]}); err != nil {
			break
		}
		select {
		case d := <-closed:
			return d, nil
		case <-time.After(every):
		}
		if time.Since(start) > giveUp {
			return time.Since(start), fmt.Errorf("still open after %v", giveUp)
		}
	}
	d := <-closed
	if d >= giveUp {
		return d, fmt.Errorf("still open after %v", giveUp)
	}
	return d, nil
}

// revoke replaces the canary token in the policy file, reloads, and checks
// that the old token is refused at once and the new one admitted. It
// returns the bodies it saw.
func revoke(t *testing.T, c *http.Client, gw *testutil.App, path, body string) string {
	t.Helper()
	if x := send(c, gw.URL, testutil.CanaryToken, body, nil); x.status != 200 {
		t.Fatalf("before revocation: %d %s", x.status, x.body)
	}
	if err := os.WriteFile(path, []byte(policyYAML(policySpec{RecToken: replacementToken})), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := adminCall(t, http.MethodPost, gw.AdminURL+"/admin/reload", testutil.AdminToken); code != 200 {
		t.Fatalf("reload: %d", code)
	}
	old := send(c, gw.URL, testutil.CanaryToken, body, nil)
	if old.status != 401 {
		t.Errorf("revoked token after reload: %d %s", old.status, old.body)
	}
	fresh := send(c, gw.URL, replacementToken, body, nil)
	if fresh.status != 200 {
		t.Errorf("new token after reload: %d %s", fresh.status, fresh.body)
	}
	return old.body + fresh.body
}
