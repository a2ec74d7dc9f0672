package policy

import (
	"encoding/hex"
	"errors"
	"io/fs"
	"net/url"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Secrets (workspace keys, webhook URLs) are never written in the policy:
// it names an environment variable or a file, and tokens appear only as
// their sha256. Problems here name variables, files and hashes' places,
// never a value.

// secretRef reads the pair of keys that point at a secret. Only names and
// paths are ever echoed, and not even those when they look like the secret
// itself was pasted in.
func (w *walker) secretRef(o *object, envKey, fileKey string) secretRef {
	r := secretRef{at: pos{file: w.file, line: o.line, path: o.path}}
	en, ep := o.get(envKey)
	fn, fp := o.get(fileKey)
	switch {
	case en != nil && fn != nil:
		w.probs.add(r.at, "set exactly one of %s and %s, not both", envKey, fileKey)
		return r
	case en == nil && fn == nil:
		w.probs.add(r.at, "set one of %s or %s", envKey, fileKey)
		return r
	case en != nil:
		s, ok := w.str(en, ep)
		switch {
		case !ok:
		case looksSecret(s):
			w.errorf(en, ep, "must name an environment variable, not hold the secret (value not shown)")
		case !envRE.MatchString(s):
			w.errorf(en, ep, "%s is not an environment variable name", strconv.Quote(s))
		default:
			r.env, r.at = s, w.at(en, ep)
		}
	default:
		s, ok := w.str(fn, fp)
		switch {
		case !ok:
		case looksSecret(s):
			w.errorf(fn, fp, "must be the path of a file holding the secret, not the secret (value not shown)")
		case s == "":
			w.errorf(fn, fp, "must not be empty")
		default:
			r.file, r.at = w.resolvePath(s), w.at(fn, fp)
		}
	}
	return r
}

// parseTokens reads a list of {sha256, name}. Hashes are normalised to
// lower case so the same token in two spellings is caught as a duplicate.
func (w *walker) parseTokens(n *yaml.Node, p string) []rawToken {
	var out []rawToken
	for i, item := range w.seq(n, p) {
		ip := index(p, i)
		o := w.object(item, ip, item.Line, "sha256", "name")
		if o == nil {
			continue
		}
		var name string
		if nn, np := o.get("name"); nn != nil {
			name, _ = w.str(nn, np)
		}
		hn, hp := o.require("sha256")
		if hn == nil {
			continue
		}
		h, ok := w.str(hn, hp)
		if !ok {
			continue
		}
		if isPlaceholder(h) {
			w.errorf(hn, hp, "is a placeholder from the shipped deploy files: run `clade-gateway new-token` and put the sha256 it prints here")
			continue
		}
		if !sha256RE.MatchString(h) {
			// A raw token pasted here would be a secret: never echo it.
			w.errorf(hn, hp, "must be the sha256 of the token as 64 hex digits (value not shown)")
			continue
		}
		t := rawToken{at: w.at(hn, hp), name: name}
		for j := range t.digest {
			v, _ := strconv.ParseUint(strings.ToLower(h[2*j:2*j+2]), 16, 8)
			t.digest[j] = byte(v)
		}
		out = append(out, t)
	}
	return out
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

func secretSource(r secretRef) string {
	if r.env != "" {
		return "environment variable " + r.env
	}
	return "file " + r.file
}

// resolveSecret reads one secret when o.ResolveSecrets is set. Problems
// name the variable or file, never the value. ok reports whether a value
// was read.
func resolveSecret(r secretRef, o LoadOptions, probs *problems) (Secret, bool) {
	if !o.ResolveSecrets || (r.env == "" && r.file == "") {
		return "", false
	}
	if r.env != "" {
		v := o.Getenv(r.env)
		if v == "" {
			probs.add(r.at, "environment variable %s is not set", r.env)
			return "", false
		}
		if isPlaceholder(v) {
			probs.add(r.at, "environment variable %s holds a placeholder, not a real secret (value not shown): set it to the real value", r.env)
			return "", false
		}
		return Secret(v), true
	}
	b, err := o.ReadFile(r.file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		probs.add(r.at, "secret file %s does not exist", r.file)
		return "", false
	case err != nil:
		// fs errors carry the path and the cause, not the contents.
		probs.add(r.at, "cannot read secret file: %v", err)
		return "", false
	}
	// Editors and `echo > file` add one newline; a key never ends in one.
	v, ok := strings.CutSuffix(string(b), "\n")
	if ok {
		v = strings.TrimSuffix(v, "\r")
	}
	if v == "" {
		probs.add(r.at, "secret file %s is empty", r.file)
		return "", false
	}
	if isPlaceholder(v) {
		probs.add(r.at, "secret file %s holds a placeholder, not a real secret (value not shown): put the real value in it", r.file)
		return "", false
	}
	return Secret(v), true
}

func adminTokenName(t rawToken) string {
	if t.name != "" {
		return t.name
	}
	return "sha256:" + hex.EncodeToString(t.digest[:6])
}
