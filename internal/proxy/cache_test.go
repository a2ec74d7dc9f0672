package proxy

import (
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

func TestParseMessagesCacheBound(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		want       pricing.PromptCache
	}{
		{"no cache_control", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi 1h"}]}`, pricing.CacheNone},
		{"top level", `{"model":"m","max_tokens":5,"cache_control":{"type":"ephemeral"},"messages":[]}`, pricing.Cache5m},
		{"on a block", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral","ttl":"5m"}}]}]}`, pricing.Cache5m},
		{"in a tool", `{"model":"m","max_tokens":5,"tools":[{"name":"t","input_schema":{},"cache_control":{"type":"ephemeral"}}],"messages":[]}`, pricing.Cache5m},
		{"one hour", `{"model":"m","max_tokens":5,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral","ttl":"1h"}}],"messages":[]}`, pricing.CacheAny},
		{"escaped key", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"x","cache\u005fcontrol":{"type":"ephemeral","ttl":"1\u0068"}}]}]}`, pricing.CacheAny},
	} {
		p, err := parseMessages([]byte(tt.body))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if p.Cache != tt.want {
			t.Errorf("%s: Cache = %d, want %d", tt.name, p.Cache, tt.want)
		}
	}
}

func TestParseMessagesThinkingBudget(t *testing.T) {
	p, err := parseMessages([]byte(`{"model":"m","max_tokens":5000,"thinking":{"type":"enabled","budget_tokens":4000},"messages":[]}`))
	if err != nil || p.ThinkingBudget != 4000 {
		t.Fatalf("ThinkingBudget = %d, %v; want 4000", p.ThinkingBudget, err)
	}
	p, err = parseMessages([]byte(`{"model":"m","max_tokens":5000,"thinking":{"type":"adaptive"},"messages":[]}`))
	if err != nil || p.ThinkingBudget != 0 {
		t.Fatalf("adaptive: ThinkingBudget = %d, %v; want 0", p.ThinkingBudget, err)
	}
}
