package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// foldName is how the test recognises a header under any spelling: lower
// case, without '-', '_' or '.'.
func foldName(s string) string {
	return strings.NewReplacer("-", "", "_", "", ".", "").Replace(strings.ToLower(s))
}

// TestHeaderAndTrailerSmugglingIsStripped sends credentials, workspace and
// organisation selectors under spellings that a normalising proxy would
// read as the real header, and as trailers after a chunked body: the
// upstream must see the gateway's key once and nothing else of them.
func TestHeaderAndTrailerSmugglingIsStripped(t *testing.T) {
	f, up := startUpstream(t)
	gw := testutil.StartApp(t, env(t, up.URL, basePolicy(testpolicy.Daily("50"))))
	body := `{"model":"claude-sonnet-4-6","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
	smuggled := map[string]string{
		"X_Api_Key":                 testutil.OtherToken,
		"x_api-key":                 testutil.OtherToken,
		"X.Api.Key":                 testutil.OtherToken,
		"Anthropic_Workspace_Id":    "wrkspc_other",
		"anthropic-workspace_id":    "wrkspc_other",
		"Anthropic-Organization-Id": "org_other",
		"Proxy_Authorization":       "Bearer " + testutil.OtherToken,
		"Authorization_":            "Bearer " + testutil.OtherToken,
		"Cookie":                    "session=" + testutil.OtherToken,
		"X_Forwarded_For":           "6.6.6.6",
		"X-Real-Ip":                 "6.6.6.6",
	}
	trailers := []string{"X-Api-Key", "Authorization", "Anthropic-Workspace-Id", "X_Api_Key"}

	for _, chunked := range []bool{false, true} {
		req, _ := http.NewRequest(http.MethodPost, gw.URL+"/v1/messages", strings.NewReader(body))
		req.Header.Set("x-api-key", testutil.CanaryToken)
		req.Header.Set("content-type", "application/json")
		for k, v := range smuggled {
			req.Header[k] = []string{v} // kept verbatim, not canonicalised
		}
		if chunked {
			req.ContentLength = -1
			req.Body = io.NopCloser(strings.NewReader(body))
			req.Trailer = http.Header{}
			for _, k := range trailers {
				req.Trailer[k] = []string{testutil.OtherToken}
			}
		}
		before := len(f.Requests())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("chunked=%t: status %d", chunked, resp.StatusCode)
		}
		seen := f.Requests()
		if len(seen) != before+1 {
			t.Fatalf("chunked=%t: %d upstream requests, want 1", chunked, len(seen)-before)
		}
		last := seen[len(seen)-1]
		if v := last.Header.Values("X-Api-Key"); len(v) != 1 || v[0] != testutil.CanaryKey {
			t.Errorf("chunked=%t: upstream x-api-key is not exactly the workspace key (%d values)", chunked, len(v))
		}
		for k, vs := range last.Header {
			n := foldName(k)
			switch {
			case k == "X-Api-Key":
			case strings.Contains(n, "apikey"), strings.Contains(n, "authorization"), strings.Contains(n, "workspace"),
				strings.Contains(n, "organization"), n == "cookie", strings.HasPrefix(n, "xforwarded"), n == "xrealip":
				t.Errorf("chunked=%t: upstream saw %s", chunked, k)
			}
			for _, v := range vs {
				if strings.Contains(v, testutil.OtherToken) || strings.Contains(v, "6.6.6.6") || strings.Contains(v, "_other") {
					t.Errorf("chunked=%t: upstream saw a smuggled value in %s", chunked, k)
				}
			}
		}
		if len(last.Trailer) != 0 {
			t.Errorf("chunked=%t: upstream received trailers %v", chunked, keys(last.Trailer))
		}
	}
	assertNoLeak(t, "logs", gw.Logs.String())
}

func keys(h http.Header) []string {
	var out []string
	for k := range h {
		out = append(out, k)
	}
	return out
}
