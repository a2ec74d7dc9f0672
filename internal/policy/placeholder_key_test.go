package policy

import (
	"path/filepath"
	"testing"
)

// A workspace key still holding an example's stand-in is refused at load,
// naming the variable or file, so the gateway never starts with a key that
// Anthropic would answer with 401.
func TestPlaceholderWorkspaceKeyRefused(t *testing.T) {
	for _, v := range []string{"sk-ant-replace-me", "sk-ant-...your-workspace-key...", "<your key>", "REPLACE_ME", "sk-ant-", "sk-ant-xxxxxxxx"} {
		dir := writeFiles(t, map[string]string{
			"p.yaml": "workspaces:\n  production:\n    keys:\n      - {name: k, env: ANTHROPIC_API_KEY}\n      - {name: f, file: key}\n",
			"key":    v + "\n",
		})
		_, err := Load(filepath.Join(dir, "p.yaml"), opts(map[string]string{"ANTHROPIC_API_KEY": v}, true))
		f := filepath.Join(dir, "p.yaml")
		want := f + ":4: workspaces.production.keys[0].env: environment variable ANTHROPIC_API_KEY holds a placeholder, not a real secret (value not shown): set it to the real value\n" +
			f + ":5: workspaces.production.keys[1].file: secret file " + filepath.Join(dir, "key") + " holds a placeholder, not a real secret (value not shown): put the real value in it"
		if err == nil || err.Error() != want {
			t.Errorf("%q: error\n%v\nwant\n%s", v, err, want)
		}
	}
	for _, v := range []string{"sk-ant-api03-Zx9_real-looking-key-0123456789", "k"} {
		dir := writeFiles(t, map[string]string{"p.yaml": "workspaces:\n  production:\n    keys:\n      - {name: k, env: KEY}\n"})
		p, err := Load(filepath.Join(dir, "p.yaml"), opts(map[string]string{"KEY": v}, true))
		if err != nil || string(p.Workspaces["production"].Keys[0].Secret) != v || p.Workspaces["production"].Keys[0].Env != "KEY" {
			t.Errorf("%q refused: %v", v, err)
		}
	}
}
