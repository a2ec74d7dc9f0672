package policy

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkLoad measures a reload of a large single-file policy: 1000
// services with two tokens and two budgets each.
func BenchmarkLoad(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("workspaces:\n  w:\n    keys: [{name: k, env: K}]\nteams:\n  t:\n    budgets: [{period: monthly, limit_usd: 5000}]\nservices:\n")
	for i := range 1000 {
		fmt.Fprintf(&sb, "  svc-%d:\n    team: t\n    workspace: w\n    tokens:\n", i)
		for j := range 2 {
			fmt.Fprintf(&sb, "      - sha256: %x\n", sha256.Sum256(fmt.Appendf(nil, "tok-%d-%d", i, j)))
		}
		sb.WriteString("    budgets:\n      - {period: daily, limit_usd: 50}\n      - {id: cap, period: monthly, limit_usd: 200.25, alert_at: [0.5, 0.9]}\n")
	}
	dir := b.TempDir()
	f := filepath.Join(dir, "p.yaml")
	if err := writeBench(f, sb.String()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := Load(f, opts(nil, false))
		if err != nil || len(p.Services) != 1000 {
			b.Fatalf("Load: %v", err)
		}
	}
}

func BenchmarkServiceByToken(b *testing.B) {
	p, err := Load("testdata/good.yaml", opts(nil, false))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := p.ServiceByToken("tok-rec-1"); !ok {
			b.Fatal("not found")
		}
	}
}
