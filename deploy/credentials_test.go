package deploy_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// tokenPlaceholder is what the shipped policies hold instead of a token's
// sha256; the loader refuses it with a message naming new-token.
const tokenPlaceholder = "REPLACE_ME_with_the_sha256_from_clade-gateway_new-token"

// withTokens copies a policy file or folder to a temporary place with each
// placeholder replaced by the sha256 of a fresh random token, as an
// operator following the files' instructions would.
func withTokens(t *testing.T, path string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(path))
	fix := func(b []byte) []byte {
		for bytes.Contains(b, []byte(tokenPlaceholder)) {
			var r [32]byte
			_, _ = rand.Read(r[:])
			sum := sha256.Sum256(r[:])
			b = bytes.Replace(b, []byte(tokenPlaceholder), []byte(hex.EncodeToString(sum[:])), 1)
		}
		return b
	}
	err := filepath.Walk(path, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(path, p)
		out := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, fix(b), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

var (
	hexDigest = regexp.MustCompile(`\b[0-9a-fA-F]{64}\b`)
	// word is anything that could be a token printed in a file: the
	// gateway's own tokens are [A-Za-z0-9_-]; a few more characters cover
	// tokens written in other forms.
	word = regexp.MustCompile(`[A-Za-z0-9_\-.+/=:]{4,}`)
)

// The compose and Kubernetes policies must not accept any token printed
// anywhere in the repository: every sha256 they hold is compared with the
// sha256 of every word of every file, and the placeholders must be the
// only token entries.
func TestShippedPoliciesAcceptNoPrintedToken(t *testing.T) {
	policies := walk(t, func(p string) bool {
		return (strings.HasPrefix(p, "compose/") || strings.HasPrefix(p, "kubernetes/")) && strings.HasSuffix(p, ".yaml")
	})
	accepted := map[string]string{} // digest -> file
	for _, f := range policies {
		for _, d := range hexDigest.FindAll(read(t, f), -1) {
			accepted[strings.ToLower(string(d))] = f
		}
	}
	printed := map[string]bool{} // sha256 of every word in the repository
	root := ".."
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() {
			if n := info.Name(); n == ".git" || n == "node_modules" || (n == "data" && p != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if info.Size() > 4<<20 {
			return nil
		}
		b, rerr := os.ReadFile(p)
		if rerr != nil || bytes.IndexByte(b, 0) >= 0 {
			return nil //nolint:nilerr // an unreadable or binary file holds no key to find
		}
		for _, w := range word.FindAll(b, -1) {
			for _, cand := range candidates(w) {
				sum := sha256.Sum256(cand)
				printed[hex.EncodeToString(sum[:])] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The scan must see tokens printed in the repository: the test
	// canaries are.
	if !printed[testutil.SHA256(testutil.CanaryToken)] || !printed[testutil.SHA256(testutil.AdminToken)] {
		t.Fatal("the scan did not find the test canary tokens; it would miss printed tokens")
	}
	for d, f := range accepted {
		if printed[d] {
			t.Errorf("%s accepts a token printed in the repository (sha256 %s...)", f, d[:12])
		}
	}
	for _, f := range policies {
		if !strings.Contains(f, "/policy/") && !strings.HasSuffix(f, "compose/clade.yaml") {
			continue
		}
		if n := bytes.Count(read(t, f), []byte("sha256:")); n != bytes.Count(read(t, f), []byte(`sha256: "`+tokenPlaceholder+`"`)) {
			t.Errorf("%s: %d token entries, not all of them placeholders", f, n)
		}
	}
}

// candidates are the ways a word may be a token: itself, and without the
// quotes or punctuation that surround it in prose.
func candidates(w []byte) [][]byte {
	out := [][]byte{w}
	if t := bytes.Trim(w, ".:/=+-"); len(t) > 0 && !bytes.Equal(t, w) {
		out = append(out, t)
	}
	return out
}

// The admin listener is not reachable from outside the host (compose) or
// from other pods than Prometheus (Kubernetes) by default.
func TestAdminListenerNotExposed(t *testing.T) {
	var c composeFile
	decodeInto(t, "compose/compose.yaml", &c)
	for name, s := range c.Services {
		if s.Environment["CLADE_ADMIN_LISTEN"] == "" {
			continue
		}
		_, port, _ := strings.Cut(s.Environment["CLADE_ADMIN_LISTEN"], ":")
		for _, p := range s.Ports {
			parts := strings.Split(p, ":")
			if parts[len(parts)-1] == port && (len(parts) != 3 || parts[0] != "127.0.0.1") {
				t.Errorf("%s publishes the admin port as %q: bind it to 127.0.0.1", name, p)
			}
		}
	}

	var k kustomization
	decodeInto(t, "kubernetes/base/kustomization.yaml", &k)
	found := false
	for _, r := range k.Resources {
		if r != "networkpolicy.yaml" {
			continue
		}
		found = true
		var np struct {
			Kind string `yaml:"kind"`
			Spec struct {
				PodSelector struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"podSelector"`
				PolicyTypes []string `yaml:"policyTypes"`
				Ingress     []struct {
					From []struct {
						PodSelector *struct {
							MatchLabels map[string]string `yaml:"matchLabels"`
						} `yaml:"podSelector"`
					} `yaml:"from"`
					Ports []struct {
						Port any `yaml:"port"`
					} `yaml:"ports"`
				} `yaml:"ingress"`
			} `yaml:"spec"`
		}
		decodeInto(t, "kubernetes/base/networkpolicy.yaml", &np)
		if np.Kind != "NetworkPolicy" || np.Spec.PodSelector.MatchLabels["app.kubernetes.io/component"] != "gateway" ||
			len(np.Spec.PolicyTypes) != 1 || np.Spec.PolicyTypes[0] != "Ingress" {
			t.Fatalf("networkpolicy.yaml does not restrict ingress to the gateway pods: %+v", np)
		}
		for i, rule := range np.Spec.Ingress {
			admin := false
			for _, p := range rule.Ports {
				admin = admin || p.Port == "admin" || p.Port == 9090
			}
			if len(rule.Ports) == 0 {
				t.Errorf("ingress rule %d opens every port", i)
			}
			if !admin {
				continue
			}
			if len(rule.From) == 0 {
				t.Errorf("ingress rule %d opens the admin port to everyone", i)
			}
			for _, f := range rule.From {
				if f.PodSelector == nil || len(f.PodSelector.MatchLabels) == 0 {
					t.Errorf("ingress rule %d opens the admin port to every pod", i)
				}
			}
		}
	}
	if !found {
		t.Error("the Kubernetes base has no NetworkPolicy for the admin port")
	}
}
