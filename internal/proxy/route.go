package proxy

import (
	"net/http"
	"net/url"
	"path"
	"strings"
)

// route is what the gateway does with a path.
type route int

const (
	routeRefused     route = iota
	routeMessages          // POST /v1/messages: metered
	routeCountTokens       // POST /v1/messages/count_tokens: free
	routeBatches           // /v1/messages/batches...: metered from results
	routeFree              // models: no spend
	routeFiles             // /v1/files...: no spend, owned by the uploading service
)

// classify decides how a request is handled. Anything the gateway cannot
// meter is refused rather than forwarded: an unmetered path that spends
// money is a hole in every cap. It returns the message a refusal carries.
func classify(method, path string) (route, string) {
	switch {
	case path == "/v1/messages":
		if method != http.MethodPost {
			return routeRefused, "method " + method + " is not allowed on /v1/messages"
		}
		return routeMessages, ""
	case path == "/v1/messages/count_tokens":
		if method != http.MethodPost {
			return routeRefused, "method " + method + " is not allowed on /v1/messages/count_tokens"
		}
		return routeCountTokens, ""
	case path == "/v1/messages/batches" || strings.HasPrefix(path, "/v1/messages/batches/"):
		return routeBatches, ""
	case path == "/v1/models" || strings.HasPrefix(path, "/v1/models/"):
		return routeFree, ""
	case path == "/v1/files" || strings.HasPrefix(path, "/v1/files/"):
		return routeFiles, ""
	case path == "/v1/complete":
		return routeRefused, "the legacy Text Completions API (/v1/complete) reports no usage, so the gateway cannot meter it; use /v1/messages"
	case strings.HasPrefix(path, "/v1/organizations"):
		return routeRefused, "Admin API paths are never forwarded by the gateway"
	case isManagedAgents(path):
		return routeRefused, "managed-agent paths bill session time the gateway cannot meter; they are not served through the gateway"
	}
	return routeRefused, "path " + safePath(path) + " is not served by the gateway"
}

func isManagedAgents(path string) bool {
	for _, p := range []string{"/v1/agents", "/v1/sessions", "/v1/environments", "/v1/memory_stores",
		"/v1/vaults", "/v1/deployments", "/v1/deployment_runs", "/v1/dreams", "/v1/tunnels", "/v1/user_profiles"} {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// safePath bounds what of a client's path is echoed back.
func safePath(p string) string {
	if len(p) > 80 {
		p = p[:80] + "..."
	}
	return p
}

// cleanPath reports whether u's path is canonical: no dot segments, no
// doubled slashes, and no escapes other than the default encoding.
func cleanPath(u *url.URL) bool {
	if u.RawPath != "" && u.RawPath != u.EscapedPath() {
		return false
	}
	if strings.Contains(strings.ToLower(u.RawPath), "%2f") || strings.Contains(strings.ToLower(u.RawPath), "%2e") {
		return false
	}
	p := u.Path
	return p != "" && path.Clean(p) == p
}

func routeName(r route) string {
	switch r {
	case routeMessages:
		return "messages"
	case routeCountTokens:
		return "count_tokens"
	case routeBatches:
		return "batches"
	case routeFree:
		return "free"
	case routeFiles:
		return "files"
	}
	return "refused"
}
