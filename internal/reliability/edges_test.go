package reliability

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// holdsAndReserved reads what the store holds: Redis hold records and the
// service's reserved amount.
func holdsAndReserved(t *testing.T, rd *testutil.Redis, adminURL string) (int, string) {
	t.Helper()
	holds, err := rd.Client().Keys(context.Background(), "{clade}:hold:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	lv, err := serviceBudget(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	return len(holds), lv.Reserved.String()
}

// TestReliabilityStalledBodies: bodies that stop arriving or trickle past
// the deadlines are cut with 408 and their connections closed, before any
// hold or upstream call; the gateway serves on.
func TestReliabilityStalledBodies(t *testing.T) {
	r := newRow(t, "8a. Stalled request bodies (stop mid-body, trickle a byte per 100ms)")
	rd := startRedis(t)
	f, up := startUpstream(t)
	gw := testutil.StartApp(t, gatewayEnv(t, up.URL, policySpec{}, rd.URL(), map[string]string{
		"CLADE_BODY_IDLE_TIMEOUT": "300ms", "CLADE_BODY_READ_TIMEOUT": "1s"}))
	addr := strings.TrimPrefix(gw.URL, "http://")
	body := messageBody(16, false) + strings.Repeat(" ", 4096)
	const n = 20
	var mu sync.Mutex
	var worst time.Duration
	cut, closed := 0, 0
	var bodies strings.Builder
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			start := time.Now()
			fmt.Fprintf(conn, "POST /v1/messages HTTP/1.1\r\nHost: %s\r\nx-api-key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				addr, testutil.CanaryToken, len(body), body[:50])
			stop := make(chan struct{})
			defer close(stop)
			if i%2 == 1 { // trickle
				go func() {
					for j := 50; j < len(body); j++ {
						select {
						case <-stop:
							return
						case <-time.After(100 * time.Millisecond):
						}
						if _, err := conn.Write([]byte{body[j]}); err != nil {
							return
						}
					}
				}()
			}
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Errorf("stalled body %d: %v", i, err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			took := time.Since(start)
			_, eof := br.ReadByte()
			mu.Lock()
			defer mu.Unlock()
			bodies.Write(b)
			worst = max(worst, took)
			if resp.StatusCode == http.StatusRequestTimeout {
				cut++
			}
			// A trickler still writing may see the close as a reset.
			if eof == io.EOF || errors.Is(eof, syscall.ECONNRESET) {
				closed++
			}
		}()
	}
	wg.Wait()
	holds, reserved := holdsAndReserved(t, rd, gw.AdminURL)
	after := send(newClient(t, 5*time.Second), gw.URL, testutil.CanaryToken, messageBody(16, false), nil)
	leaked := leaks(gw.Logs.String(), gw.Spend.String(), bodies.String()) + upstreamLeaks(f.Requests())
	r.Load = fmt.Sprintf("%d bodies (%d stop after 50 bytes, %d trickle); idle 300ms, total 1s", n, n/2, n/2)
	r.Faults = fmt.Sprintf("%d cut with 408, %d connections closed, slowest cut %s; %d forwarded; %d holds, reserved $%s",
		cut, closed, ms(worst), f.Messages()-1, holds, reserved)
	r.Unmetered, r.Double, r.Leaks = "0", "0", fmt.Sprint(leaked)
	r.Recovery = fmt.Sprintf("next request %d", after.status)
	if cut != n || closed != n || holds != 0 || reserved != "0" || f.Messages() != 1 || after.status != 200 || leaked != 0 {
		t.Errorf("%s", r.Faults)
	}
}

// TestReliabilityOversizedBatches: batch bodies over the batch limit are
// refused 413 whether announced by Content-Length or chunked, before any
// hold or upstream call; one at the limit is admitted.
func TestReliabilityOversizedBatches(t *testing.T) {
	r := newRow(t, "8b. Oversized batch bodies (Content-Length and chunked)")
	const limit = 8 << 20
	rd := startRedis(t)
	f, up := startUpstream(t)
	gw := testutil.StartApp(t, gatewayEnv(t, up.URL, policySpec{Limit: "100000"}, rd.URL(), map[string]string{
		"CLADE_MAX_BATCH_BODY_BYTES": fmt.Sprint(limit)}))
	c := newClient(t, time.Minute)
	batch := func(size int) string {
		pre := `{"requests":[{"custom_id":"a","params":{"model":"` + model + `","max_tokens":16,"messages":[{"role":"user","content":"`
		post := `"}]}}]}`
		return pre + strings.Repeat("a", size-len(pre)-len(post)) + post
	}
	var bodies strings.Builder
	statuses := map[string]int{}
	for _, tc := range []struct {
		name    string
		size    int
		chunked bool
	}{{"limit+1, Content-Length", limit + 1, false}, {"limit+1, chunked", limit + 1, true},
		{"4×limit, chunked", 4 * limit, true}, {"at the limit", limit, false}} {
		b := batch(tc.size)
		req, _ := http.NewRequest(http.MethodPost, gw.URL+"/v1/messages/batches", strings.NewReader(b))
		req.Header.Set("x-api-key", testutil.CanaryToken)
		req.Header.Set("content-type", "application/json")
		if tc.chunked {
			req.Body, req.ContentLength = io.NopCloser(strings.NewReader(b)), -1
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		bodies.Write(out)
		statuses[tc.name] = resp.StatusCode
	}
	seen := 0
	for _, s := range f.Requests() {
		if s.Path == "/v1/messages/batches" {
			seen++
		}
	}
	holds, _ := holdsAndReserved(t, rd, gw.AdminURL)
	leaked := leaks(gw.Logs.String(), gw.Spend.String(), bodies.String()) + upstreamLeaks(f.Requests())
	r.Load = "batch bodies of 8 MiB+1 (Content-Length, chunked), 32 MiB (chunked), 8 MiB; limit 8 MiB"
	r.Faults = fmt.Sprintf("413/413/413 expected, got %d/%d/%d; at the limit %d; %d batch reached the upstream, %d hold (its own)",
		statuses["limit+1, Content-Length"], statuses["limit+1, chunked"], statuses["4×limit, chunked"], statuses["at the limit"], seen, holds)
	r.Unmetered, r.Double, r.Leaks, r.Recovery = "0", "0", fmt.Sprint(leaked), "n/a"
	if statuses["limit+1, Content-Length"] != 413 || statuses["limit+1, chunked"] != 413 || statuses["4×limit, chunked"] != 413 ||
		statuses["at the limit"] != 200 || seen != 1 || holds != 1 || leaked != 0 {
		t.Errorf("%s", r.Faults)
	}
}

// TestReliabilityTrailerSmuggling: credentials and workspace selectors
// sent as trailers or under other spellings never reach the upstream.
func TestReliabilityTrailerSmuggling(t *testing.T) {
	r := newRow(t, "8c. Trailer and header-spelling smuggling (x_api_key, anthropic_workspace_id, trailers)")
	rd := startRedis(t)
	f, up := startUpstream(t)
	gw := testutil.StartApp(t, gatewayEnv(t, up.URL, policySpec{}, rd.URL(), nil))
	c := newClient(t, 10*time.Second)
	spellings := []string{"X_Api_Key", "x_api-key", "X.Api.Key", "Authorization_", "Proxy_Authorization",
		"Anthropic_Workspace_Id", "anthropic-workspace_id", "Anthropic-Organization-Id", "Cookie", "X_Forwarded_For"}
	trailers := []string{"X-Api-Key", "Authorization", "Anthropic-Workspace-Id", "X_Api_Key"}
	const rounds = 10
	ok := 0
	for i := range rounds {
		body := messageBody(16, false)
		req, _ := http.NewRequest(http.MethodPost, gw.URL+"/v1/messages", strings.NewReader(body))
		req.Header.Set("x-api-key", testutil.CanaryToken)
		req.Header.Set("content-type", "application/json")
		for _, h := range spellings {
			req.Header[h] = []string{testutil.OtherToken}
		}
		if i%2 == 0 {
			req.Body, req.ContentLength = io.NopCloser(strings.NewReader(body)), -1
			req.Trailer = http.Header{}
			for _, h := range trailers {
				req.Trailer[h] = []string{testutil.OtherToken}
			}
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			ok++
		}
	}
	reached, keys := 0, 0
	for _, s := range f.Requests() {
		keys += len(s.Header.Values("X-Api-Key"))
		reached += len(s.Trailer)
		for k := range s.Header {
			for _, sp := range spellings {
				if k == http.CanonicalHeaderKey(sp) || k == sp {
					reached++
				}
			}
		}
	}
	upLeaks := upstreamLeaks(f.Requests())
	leaked := leaks(gw.Logs.String(), gw.Spend.String()) + upLeaks
	r.Load = fmt.Sprintf("%d requests, %d smuggled spellings each, trailers on half (%d names)", rounds, len(spellings), len(trailers))
	r.Faults = fmt.Sprintf("%d answered 200; smuggled headers or trailers at the upstream: %d; x-api-key values upstream: %d (one per request)",
		ok, reached, keys)
	r.Unmetered, r.Double, r.Leaks, r.Recovery = "0", "0", fmt.Sprint(leaked), "n/a"
	if ok != rounds || reached != 0 || keys != rounds || leaked != 0 {
		t.Errorf("%s; canaries upstream %d", r.Faults, upLeaks)
	}
}

// TestReliabilityCrossServiceFiles: one service's files and batches are
// invisible to another: reads, downloads and deletes answer 404 without
// reaching the upstream, and listings omit them.
func TestReliabilityCrossServiceFiles(t *testing.T) {
	r := newRow(t, "8d. Cross-service file and batch access (get, download, delete, list)")
	rd := startRedis(t)
	f, up := startUpstream(t)
	gw := testutil.StartApp(t, gatewayEnv(t, up.URL, policySpec{Limit: "100000"}, rd.URL(), nil))
	ctx := context.Background()
	owner := anthropic.NewClient(option.WithBaseURL(gw.URL), option.WithAPIKey(testutil.OtherToken), option.WithMaxRetries(0))
	other := anthropic.NewClient(option.WithBaseURL(gw.URL), option.WithAPIKey(testutil.CanaryToken), option.WithMaxRetries(0))
	const files = 10
	var ids []string
	for i := range files {
		fo, err := owner.Beta.Files.Upload(ctx, anthropic.BetaFileUploadParams{File: anthropic.File(strings.NewReader("secret "+fmt.Sprint(i)), "f.txt", "text/plain")})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, fo.ID)
	}
	b, err := owner.Messages.Batches.New(ctx, anthropic.MessageBatchNewParams{Requests: []anthropic.MessageBatchNewParamsRequest{{CustomID: "a",
		Params: anthropic.MessageBatchNewParamsRequestParams{Model: model, MaxTokens: 16, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}}}})
	if err != nil {
		t.Fatal(err)
	}
	before := len(f.Requests())
	attempts, refused := 0, 0
	try := func(err error) {
		attempts++
		var ae *anthropic.Error
		if errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound {
			refused++
		}
	}
	for _, id := range ids {
		_, err := other.Beta.Files.GetMetadata(ctx, id, anthropic.BetaFileGetMetadataParams{})
		try(err)
		resp, err := other.Beta.Files.Download(ctx, id, anthropic.BetaFileDownloadParams{})
		if err == nil {
			resp.Body.Close()
		}
		try(err)
		_, err = other.Beta.Files.Delete(ctx, id, anthropic.BetaFileDeleteParams{})
		try(err)
	}
	_, err = other.Messages.Batches.Get(ctx, b.ID, anthropic.MessageBatchGetParams{})
	try(err)
	_, err = other.Messages.Batches.Cancel(ctx, b.ID, anthropic.MessageBatchCancelParams{})
	try(err)
	reached := len(f.Requests()) - before
	listed := 0
	it := other.Beta.Files.ListAutoPaging(ctx, anthropic.BetaFileListParams{Limit: anthropic.Int(3)})
	for it.Next() {
		listed++
	}
	bt := other.Messages.Batches.ListAutoPaging(ctx, anthropic.MessageBatchListParams{})
	for bt.Next() {
		listed++
	}
	still := 0
	for _, id := range ids {
		if _, err := owner.Beta.Files.GetMetadata(ctx, id, anthropic.BetaFileGetMetadataParams{}); err == nil {
			still++
		}
	}
	leaked := leaks(gw.Logs.String(), gw.Spend.String()) + upstreamLeaks(f.Requests())
	r.Load = fmt.Sprintf("%d files and 1 batch of one service; the other tries each", files)
	r.Faults = fmt.Sprintf("%d/%d attempts answered 404, %d reached the upstream; %d of them listed to the other; %d/%d still the owner's",
		refused, attempts, reached, listed, still, files)
	r.Unmetered, r.Double, r.Leaks, r.Recovery = "0", "0", fmt.Sprint(leaked), "n/a"
	if refused != attempts || reached != 0 || listed != 0 || still != files || leaked != 0 {
		t.Errorf("%s", r.Faults)
	}
}

// TestReliabilityAdjustOverflow: adjustments that would wrap a window's
// spend are refused with 400 on both stores, and nothing is applied.
func TestReliabilityAdjustOverflow(t *testing.T) {
	r := newRow(t, "8e. Admin adjust overflow (Redis and embedded store)")
	rd := startRedis(t)
	_, up := startUpstream(t)
	c := newClient(t, 10*time.Second)
	amounts := []string{"1000000000", "1000000000", "9223372036.854775807", "-9223372036.854775808", "99999999999999999999",
		"500000000", "1e9", "-3000000000"}
	var faults []string
	bad := false
	for _, store := range []string{"redis", "embedded"} {
		url := rd.URL()
		if store == "embedded" {
			url = ""
		}
		gw := testutil.StartApp(t, gatewayEnv(t, up.URL, policySpec{}, url, nil))
		codes := make([]string, 0, len(amounts))
		refused := 0
		for _, a := range amounts {
			req, _ := http.NewRequest(http.MethodPost, gw.AdminURL+"/admin/budgets/adjust", strings.NewReader(
				`{"scope":"service","name":"recommendation","id":"total","amount_usd":"`+a+`","reason":"overflow probe"}`))
			req.Header.Set("Authorization", "Bearer "+testutil.AdminToken)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes = append(codes, fmt.Sprint(resp.StatusCode))
			if resp.StatusCode == 400 {
				refused++
			}
		}
		lv, err := serviceBudget(gw.AdminURL)
		if err != nil {
			t.Fatal(err)
		}
		faults = append(faults, fmt.Sprintf("%s: %d/%d refused 400 (%s), spent $%s", store, refused, len(amounts), strings.Join(codes, ","), lv.Spent))
		// Only the first adjustment fits: $1,000,000,000 is the bound.
		if refused != len(amounts)-1 || codes[0] != "200" || lv.Spent.String() != "1000000000" {
			bad = true
		}
		_ = gw.Stop()
	}
	r.Load = fmt.Sprintf("%d adjustments per store, past ±$1,000,000,000 and int64", len(amounts))
	r.Faults = strings.Join(faults, "; ")
	r.Unmetered, r.Double, r.Leaks, r.Recovery = "-", "-", "0", "n/a"
	if bad {
		t.Errorf("%s", r.Faults)
	}
}
