package storetest

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/budget/storemetrics"
)

// OpsListed checks that every operation the package under test observes
// (each .Observe call in its non-test Go files, read from the directory
// the test runs in) is one storemetrics.Ops lists, so that its error
// series exists from the start.
func OpsListed(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, op := range storemetrics.Ops() {
		listed[op] = true
	}
	re := regexp.MustCompile(`\.Observe\(("[^"]*"|[^,]+),`)
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			found++
			op, err := strconv.Unquote(m[1])
			if err != nil || !listed[op] {
				t.Errorf("%s observes op %s, which storemetrics.Ops does not list", f, m[1])
			}
		}
	}
	if found == 0 {
		t.Error("no observe calls found")
	}
}
