package proxy

import (
	"net/http"
	"strings"
)

// stripClientHeaders removes from the upstream request every header that
// could carry a credential, pick another workspace or organisation, or
// speak for the gateway's network position. Names are compared after
// folding case and dropping '-', '_' and '.', because proxies and servers
// between here and the API may treat X_Api_Key or x.api.key as x-api-key:
// a second key or workspace header must not survive under a spelling the
// gateway did not think of.
func stripClientHeaders(h http.Header) {
	for name := range h {
		if sensitiveHeader(name) {
			delete(h, name)
		}
	}
}

func sensitiveHeader(name string) bool {
	n := foldHeaderName(name)
	switch n {
	case "xapikey", "apikey", "anthropicapikey", "xanthropicapikey",
		"authorization", "proxyauthorization", "xauthtoken", "xaccesstoken",
		"cookie", "cookie2",
		"anthropicworkspaceid", "xanthropicworkspaceid", "anthropicorganizationid", "xanthropicorganizationid",
		"forwarded", "xrealip", "xclientip", "trueclientip", "via":
		return true
	}
	return strings.HasPrefix(n, "xforwarded") || strings.HasPrefix(n, "xoriginal")
}

// foldHeaderName lower-cases name and drops the separators that header
// normalisers disagree about.
func foldHeaderName(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-' || c == '_' || c == '.':
		case 'A' <= c && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
