package policy

import "strings"

// placeholderMarks are what values written in docs, samples and .env
// templates contain and a real key, token digest or URL never does.
var placeholderMarks = []string{
	"replace-me", "replace_me", "replaceme", "change-me", "change_me", "changeme",
	"your-", "your_", "...", "…", "xxxx",
}

// isPlaceholder reports whether a secret or token digest is a stand-in
// copied from documentation or a shipped deploy file ("sk-ant-...",
// "REPLACE_ME...", "<your key>", "changeme"). Starting with one must fail
// loudly: a placeholder workspace key would reach Anthropic and come back
// as a 401 that reads like the gateway's own, and a placeholder token is
// public.
func isPlaceholder(v string) bool {
	l := strings.ToLower(strings.TrimSpace(v))
	if strings.HasPrefix(l, "replace") || strings.HasPrefix(l, "<") && strings.HasSuffix(l, ">") {
		return true
	}
	for _, m := range placeholderMarks {
		if strings.Contains(l, m) {
			return true
		}
	}
	switch strings.NewReplacer("-", "", "_", "", " ", "").Replace(l) {
	case "changeme", "changeit", "placeholder", "todo", "secret", "password", "xxx", "xxxx", "skant":
		return true
	}
	return false
}
