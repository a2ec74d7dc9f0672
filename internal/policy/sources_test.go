package policy

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSources(t *testing.T) {
	got, err := Sources("testdata/good.yaml")
	if err != nil || !cmp.Equal(got, []string{"testdata/good.yaml"}) {
		t.Errorf("Sources(file) = %q, %v", got, err)
	}
	got, err = Sources("testdata/folder-good")
	want := []string{"testdata/folder-good/clade.yaml", "testdata/folder-good/teams/ads.yaml", "testdata/folder-good/teams/search.yaml"}
	if err != nil || !cmp.Equal(got, want) {
		t.Errorf("Sources(folder) = %q, %v; want %q", got, err, want)
	}
	// Kubernetes ConfigMap mounts: ..data and dot files are not team files;
	// a .yml file is listed, since it makes the policy invalid.
	dir := t.TempDir()
	copyTree(t, "testdata/folder-good", dir)
	if err := os.MkdirAll(filepath.Join(dir, "teams", "..2026_11_15"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..2026_11_15", filepath.Join(dir, "teams", "..data")); err != nil {
		t.Fatal(err)
	}
	writeAt(t, filepath.Join(dir, "teams", ".swp.yaml"), "junk: [")
	writeAt(t, filepath.Join(dir, "teams", "ml.yml"), "budgets: []\n")
	got, err = Sources(dir)
	want = []string{filepath.Join(dir, "clade.yaml"), filepath.Join(dir, "teams/ads.yaml"), filepath.Join(dir, "teams/search.yaml"), filepath.Join(dir, "teams/ml.yml")}
	if err != nil || !cmp.Equal(got, want) {
		t.Errorf("Sources(k8s folder) = %q, %v; want %q", got, err, want)
	}
	if _, err := Sources("testdata/nope"); err == nil {
		t.Error("Sources of a missing path succeeded")
	}
}

func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "testdata/folder-good", dir)
	fp := func() string {
		t.Helper()
		s, err := Fingerprint(dir)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := fp()
	if again := fp(); again != base {
		t.Fatalf("fingerprint unstable: %s then %s", base, again)
	}
	// Touching a file without changing it is not a change.
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "teams", "ads.yaml"), future, future); err != nil {
		t.Fatal(err)
	}
	if got := fp(); got != base {
		t.Error("touch changed the fingerprint")
	}
	seen := map[string]string{base: "base"}
	step := func(name string, change func()) {
		t.Helper()
		change()
		got := fp()
		if prev, dup := seen[got]; dup {
			t.Errorf("%s: fingerprint same as after %s", name, prev)
		}
		seen[got] = name
	}
	step("edit a team file", func() {
		writeAt(t, filepath.Join(dir, "teams", "ads.yaml"), "budgets: []\n")
	})
	step("add a team file", func() {
		writeAt(t, filepath.Join(dir, "teams", "ml.yaml"), "budgets: []\n")
	})
	step("rename a team file", func() {
		if err := os.Rename(filepath.Join(dir, "teams", "ml.yaml"), filepath.Join(dir, "teams", "ai.yaml")); err != nil {
			t.Fatal(err)
		}
	})
	step("edit clade.yaml", func() {
		b, _ := os.ReadFile(filepath.Join(dir, "clade.yaml"))
		writeAt(t, filepath.Join(dir, "clade.yaml"), string(b)+"# reviewed\n")
	})
	step("remove a team file", func() {
		if err := os.Remove(filepath.Join(dir, "teams", "ai.yaml")); err != nil {
			t.Fatal(err)
		}
	})
	if err := os.Remove(filepath.Join(dir, "clade.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := Fingerprint(dir); err == nil {
		t.Error("Fingerprint without clade.yaml succeeded")
	}
	// A single file works the same way.
	f := filepath.Join(t.TempDir(), "p.yaml")
	writeAt(t, f, "teams: {}\n")
	a, _ := Fingerprint(f)
	writeAt(t, f, "teams: {a: {}}\n")
	if b, _ := Fingerprint(f); a == b || a == "" {
		t.Errorf("single-file fingerprint did not change: %q %q", a, b)
	}
}
