package checklist

import (
	"strings"

	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// words splits a name, variable or file name into lower-case words.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	})
}

// envWords are the words that say which environment a name belongs to.
// Words that also name features ("live" captions, an "ab-test" ranker) are
// left out: a false FAIL teaches people to ignore the checklist.
var envWords = map[string]policy.Environment{
	"prod": policy.EnvProduction, "production": policy.EnvProduction, "prd": policy.EnvProduction,
	"staging": policy.EnvStaging, "stage": policy.EnvStaging, "stg": policy.EnvStaging, "preprod": policy.EnvStaging,
	"dev": policy.EnvDevelopment, "development": policy.EnvDevelopment, "sandbox": policy.EnvDevelopment,
}

// envOf returns the environment a name says it belongs to, or "".
func envOf(name string) policy.Environment {
	for _, w := range words(name) {
		if e, ok := envWords[w]; ok {
			return e
		}
	}
	return ""
}

// genericWords say nothing about what a key serves.
var genericWords = map[string]bool{
	"key": true, "keys": true, "api": true, "apikey": true, "anthropic": true, "claude": true, "sk": true, "ant": true,
	"default": true, "main": true, "primary": true, "secondary": true, "backup": true, "new": true, "old": true,
	"current": true, "next": true, "prev": true, "previous": true, "tmp": true, "temp": true, "secret": true,
	"token": true, "my": true, "the": true, "shared": true, "common": true, "general": true, "generic": true, "all": true,
}

// saysWhatItServes reports whether a key name has a word beyond generic
// ones, numbers, versions, environments and its workspace's name:
// "key-1", "default" and "production-2" do not; "prod-search" does.
func saysWhatItServes(name, workspace string) bool {
	ws := map[string]bool{}
	for _, w := range words(workspace) {
		ws[w] = true
	}
	for _, w := range words(name) {
		if genericWords[w] || ws[w] || isNumberish(w) || len(w) == 1 {
			continue
		}
		if _, env := envWords[w]; env {
			continue
		}
		return true
	}
	return false
}

// isNumberish matches 1, 2026, v2, r3.
func isNumberish(w string) bool {
	w = strings.TrimLeft(w, "vr")
	if w == "" {
		return false
	}
	for _, r := range w {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
