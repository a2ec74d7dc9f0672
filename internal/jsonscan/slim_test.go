package jsonscan

import (
	"strings"
	"testing"
)

func TestSlimDropsTheConversation(t *testing.T) {
	body := `{"model":"claude-sonnet-4-6","max_tokens":1024,"system":"` + strings.Repeat("s", 5000) +
		`","messages":[{"role":"user","content":"` + strings.Repeat("m", 50000) + `"}]}`
	var v Validator
	slim, ok := Slim(&v, []byte(body), "model", "max_tokens")
	if !ok {
		t.Fatal("not an object")
	}
	if want := `{"model":"claude-sonnet-4-6","max_tokens":1024,"system":"","messages":[]}`; string(slim) != want {
		t.Fatalf("slim = %s, want %s", slim, want)
	}
}
