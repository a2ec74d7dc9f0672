package policy

import "strings"

// placeholderMarks are what the values written in docs, samples and
// .env templates contain and a real key or URL never does.
var placeholderMarks = []string{
	"replace-me", "replace_me", "replaceme", "change-me", "change_me", "changeme",
	"your-", "your_", "<", ">", "...", "…", "xxxx",
}

// looksPlaceholder reports whether a secret's value is a stand-in copied
// from an example (sk-ant-...your-key..., <your key>, REPLACE_ME): such a
// value would reach Anthropic and come back as a 401 that reads like the
// gateway's own.
func looksPlaceholder(v string) bool {
	l := strings.ToLower(strings.TrimSpace(v))
	if l == "sk-ant-" || l == "sk-ant" || l == "todo" || l == "changeit" {
		return true
	}
	for _, m := range placeholderMarks {
		if strings.Contains(l, m) {
			return true
		}
	}
	return false
}
