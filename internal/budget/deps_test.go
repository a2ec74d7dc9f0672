package budget

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNoBackend keeps the model light: every package that names a
// budget (policy, pricing, notify, ...) links what this package links, so
// it depends on the standard library and money alone, never on a store's
// client, a metrics library or a logger.
func TestImportsNoBackend(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{
		"github.com/clade-gateway/clade-gateway/internal/budget": true,
		"github.com/clade-gateway/clade-gateway/internal/money":  true,
	}
	for _, p := range strings.Fields(string(out)) {
		if !allowed[p] {
			t.Errorf("budget depends on %s", p)
		}
	}
}
