package policy

import "strings"

// isPlaceholder reports whether a secret or token digest is one of the
// stand-ins documentation and shipped deploy files use ("sk-ant-...",
// "REPLACE_ME...", "<your key>", "changeme"): starting with one must fail
// loudly, not run with a credential that is public or does not work.
func isPlaceholder(v string) bool {
	l := strings.ToLower(strings.TrimSpace(v))
	switch {
	case strings.HasPrefix(l, "replace"), strings.Contains(l, "..."), strings.Contains(l, "…"),
		strings.HasPrefix(l, "<") && strings.HasSuffix(l, ">"):
		return true
	}
	switch strings.NewReplacer("-", "", "_", "", " ", "").Replace(l) {
	case "changeme", "placeholder", "todo", "secret", "password", "xxx", "xxxx", "skant":
		return true
	}
	return false
}
