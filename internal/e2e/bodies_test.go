package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// sized returns a Messages body (or, batch, a batch creation body) of
// exactly n bytes.
func sized(n int, batch bool) string {
	pre, post := `{"model":"claude-sonnet-4-6","max_tokens":16,"messages":[{"role":"user","content":"`, `"}]}`
	if batch {
		pre, post = `{"requests":[{"custom_id":"a","params":`+pre, post+`}]}`
	}
	return pre + strings.Repeat("a", n-len(pre)-len(post)) + post
}

// TestBodyLimitSameChunkedOrNot: each route's limit is the same whether
// the body has a Content-Length or is chunked: at the limit it is
// forwarded, one byte over it is refused 413 before anything reaches the
// upstream.
func TestBodyLimitSameChunkedOrNot(t *testing.T) {
	const maxBody, maxBatch = 64 << 10, 192 << 10
	f, up := startUpstream(t)
	e := env(t, up.URL, basePolicy(testpolicy.Daily("50")))
	e["CLADE_MAX_BODY_BYTES"] = fmt.Sprint(maxBody)
	e["CLADE_MAX_BATCH_BODY_BYTES"] = fmt.Sprint(maxBatch)
	gw := testutil.StartApp(t, e)
	for _, tc := range []struct {
		path string
		size int
		want int
	}{
		{"/v1/messages", maxBody, 200},
		{"/v1/messages", maxBody + 1, 413},
		{"/v1/messages/batches", maxBody + 1, 200}, // batches have their own limit
		{"/v1/messages/batches", maxBatch, 200},
		{"/v1/messages/batches", maxBatch + 1, 413},
	} {
		for _, chunked := range []bool{false, true} {
			body := sized(tc.size, tc.path != "/v1/messages")
			req, _ := http.NewRequest(http.MethodPost, gw.URL+tc.path, strings.NewReader(body))
			req.Header.Set("x-api-key", testutil.CanaryToken)
			req.Header.Set("content-type", "application/json")
			if chunked {
				req.Body, req.ContentLength = io.NopCloser(strings.NewReader(body)), -1
			}
			before := len(f.Requests())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %d bytes chunked=%t: %v", tc.path, tc.size, chunked, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			forwarded := len(f.Requests()) - before
			if resp.StatusCode != tc.want || (tc.want == 413) != (forwarded == 0) {
				t.Errorf("%s %d bytes chunked=%t: %d (%d upstream requests), want %d: %s", tc.path, tc.size, chunked,
					resp.StatusCode, forwarded, tc.want, b)
			}
			if tc.want == 413 && !strings.Contains(string(b), fmt.Sprint(tc.size-1)) {
				t.Errorf("%s: the 413 does not state the limit: %s", tc.path, b)
			}
		}
	}
}

// TestStalledBodyIsCut: a body that stops arriving, or trickles in past
// the total deadline, is cut with 408, the connection is closed, nothing
// reaches the upstream and nothing is held; the gateway serves on.
func TestStalledBodyIsCut(t *testing.T) {
	f, up := startUpstream(t)
	e := env(t, up.URL, basePolicy(testpolicy.Daily("50")))
	e["CLADE_BODY_IDLE_TIMEOUT"] = "300ms"
	e["CLADE_BODY_READ_TIMEOUT"] = "1s"
	gw := testutil.StartApp(t, e)
	addr := strings.TrimPrefix(gw.URL, "http://")
	body := sized(4096, false)
	for _, tc := range []struct {
		name  string
		every time.Duration // a byte every so often after the first 100; 0: none
		max   time.Duration
	}{
		{"stalls", 0, 3 * time.Second},
		{"trickles", 100 * time.Millisecond, 4 * time.Second},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		fmt.Fprintf(conn, "POST /v1/messages HTTP/1.1\r\nHost: %s\r\nx-api-key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			addr, testutil.CanaryToken, len(body), body[:100])
		stop := make(chan struct{})
		go func() {
			for i := 100; tc.every > 0 && i < len(body); i++ {
				select {
				case <-stop:
					return
				case <-time.After(tc.every):
				}
				if _, err := conn.Write([]byte{body[i]}); err != nil {
					return
				}
			}
		}()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		_, rerr := br.ReadByte() // the gateway closed the connection
		close(stop)
		conn.Close()
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "read deadline") {
			t.Errorf("%s: %d %s, want 408", tc.name, resp.StatusCode, b)
		}
		// A trickler still writing may see the close as a reset.
		if rerr != io.EOF && !errors.Is(rerr, syscall.ECONNRESET) {
			t.Errorf("%s: connection not closed after the cut: %v", tc.name, rerr)
		}
		if took > tc.max {
			t.Errorf("%s: cut after %v", tc.name, took)
		}
	}
	if n := len(f.Requests()); n != 0 {
		t.Errorf("%d stalled requests reached the upstream", n)
	}
	_, budgets := get(t, gw.AdminURL+"/admin/budgets", testutil.AdminToken)
	if strings.Contains(budgets, `"reserved_usd":"0.`) || !strings.Contains(budgets, `"reserved_usd":"0"`) {
		t.Errorf("something is held after the cuts: %s", budgets)
	}
	// The gateway still serves.
	req, _ := http.NewRequest(http.MethodPost, gw.URL+"/v1/messages", strings.NewReader(body))
	req.Header.Set("x-api-key", testutil.CanaryToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("after the cuts: %d", resp.StatusCode)
	}
}
