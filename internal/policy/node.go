package policy

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// The policy is walked as a yaml.Node tree rather than decoded into
// structs: a struct decode stops at the first error and loses line numbers,
// and we want every problem at once, each with file and line.

// walker reports problems found in one file.
type walker struct {
	file  string
	probs *problems
	now   func() time.Time
}

// resolvePath makes a path named in the policy relative to the file that
// names it, so a policy folder can carry its own secrets directory.
func (w *walker) resolvePath(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(w.file), p)
}

func (w *walker) errorf(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	w.probs.add(pos{file: w.file, line: line, path: path}, format, args...)
}

func (w *walker) at(n *yaml.Node, path string) pos {
	return pos{file: w.file, line: n.Line, path: path}
}

// deref follows aliases so anchors work wherever a value is expected.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// entry is one key of a mapping, in file order.
type entry struct {
	key  string
	at   *yaml.Node // the key node: where the entry starts
	val  *yaml.Node
	path string
}

// entries lists a mapping's keys in order. Repeated keys are an error
// (yaml.Node keeps both; a struct decode would silently keep the last).
// null is an empty mapping.
func (w *walker) entries(n *yaml.Node, path string) []entry {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		w.errorf(n, path, "must be a mapping")
		return nil
	}
	seen := make(map[string]int, len(n.Content)/2)
	out := make([]entry, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			w.errorf(k, path, "keys must be plain scalars")
			continue
		}
		if k.Value == "<<" && k.Tag == "!!merge" {
			w.errorf(k, path, "merge keys (<<) are not supported: write the keys out")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			w.errorf(k, join(path, k.Value), "key repeated (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, entry{key: k.Value, at: k, val: deref(v), path: join(path, k.Value)})
	}
	return out
}

// object is a mapping with a fixed set of keys.
type object struct {
	w    *walker
	path string
	line int // where the mapping is introduced, for "missing key" problems
	vals map[string]entry
}

// object checks that n is a mapping holding only allowed keys. line is the
// line that introduces the mapping (its key, or its list item). It returns
// nil, having reported it, when n is not a mapping; null is empty.
func (w *walker) object(n *yaml.Node, path string, line int, allowed ...string) *object {
	n = deref(n)
	if !isNull(n) && n.Kind != yaml.MappingNode {
		w.errorf(n, path, "must be a mapping")
		return nil
	}
	o := &object{w: w, path: path, line: line, vals: map[string]entry{}}
	for _, e := range w.entries(n, path) {
		if !contains(allowed, e.key) {
			w.errorf(e.at, e.path, "unknown key (allowed: %s)", strings.Join(allowed, ", "))
			continue
		}
		o.vals[e.key] = e
	}
	return o
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// get returns the value of key, or nil when it is absent or null.
func (o *object) get(key string) (*yaml.Node, string) {
	e, ok := o.vals[key]
	if !ok || isNull(e.val) {
		return nil, join(o.path, key)
	}
	return e.val, e.path
}

// require is get, reporting a missing or empty key.
func (o *object) require(key string) (*yaml.Node, string) {
	n, p := o.get(key)
	if n == nil {
		o.w.probs.add(pos{file: o.w.file, line: o.line, path: p}, "required key is missing")
	}
	return n, p
}

// str reads a scalar as text. Numbers and booleans are accepted as their
// literal text: a team called 2027 is still a name.
func (w *walker) str(n *yaml.Node, path string) (string, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		w.errorf(n, path, "must be a string")
		return "", false
	}
	return n.Value, true
}

func (w *walker) boolean(n *yaml.Node, path string) (bool, bool) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		w.errorf(n, path, "must be true or false")
		return false, false
	}
	return b, true
}

func (w *walker) number(n *yaml.Node, path string) (float64, bool) {
	var f float64
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil ||
		math.IsNaN(f) || math.IsInf(f, 0) {
		w.errorf(n, path, "must be a number")
		return 0, false
	}
	return f, true
}

func (w *walker) integer(n *yaml.Node, path string) (int, bool) {
	var i int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
		w.errorf(n, path, "must be a whole number")
		return 0, false
	}
	return i, true
}

// amount reads a dollar amount exactly. The literal text is parsed as a
// decimal first, so 12345678.123456789 keeps every digit a float64 would
// lose; other number spellings (1e3) go through the shortest float form.
func (w *walker) amount(n *yaml.Node, path string) (money.Nanos, bool) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float" || n.Tag == "!!str") {
		if v, err := money.Parse(n.Value); err == nil {
			return v, true
		}
		if _, frac, ok := strings.Cut(n.Value, "."); ok && len(frac) > 9 && strings.Trim(frac, "0123456789") == "" {
			w.errorf(n, path, "has more than 9 fraction digits (amounts are exact to the nano-dollar)")
			return 0, false
		}
		if n.Tag == "!!str" {
			w.errorf(n, path, "must be a number of US dollars")
			return 0, false
		}
	}
	f, ok := w.number(n, path)
	if !ok {
		return 0, false
	}
	if math.Abs(f) >= float64(math.MaxInt64/money.PerUSD) {
		w.errorf(n, path, "is out of range (at most %d USD)", int64(math.MaxInt64/money.PerUSD))
		return 0, false
	}
	v, err := money.FromFloatExact(f)
	if err != nil {
		w.errorf(n, path, "is not an exact amount of US dollars (at most 9 fraction digits)")
		return 0, false
	}
	return v, true
}

// date reads a YAML date (2026-09-01) or an RFC 3339 timestamp.
func (w *walker) date(n *yaml.Node, path string) (time.Time, bool) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!timestamp" || n.Tag == "!!str") {
		for _, layout := range []string{time.DateOnly, time.RFC3339Nano} {
			if t, err := time.Parse(layout, n.Value); err == nil {
				return t, true
			}
		}
	}
	w.errorf(n, path, "must be a date (YYYY-MM-DD)")
	return time.Time{}, false
}

// seq returns the items of a sequence; null is empty.
func (w *walker) seq(n *yaml.Node, path string) []*yaml.Node {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		w.errorf(n, path, "must be a list")
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = deref(c)
	}
	return out
}

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	idRE     = regexp.MustCompile(`^[a-z0-9_-]{1,63}$`)
	envRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	sha256RE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
)

// name reads and checks the name of a workspace, team, service, key or
// webhook.
func (w *walker) name(n *yaml.Node, path, what string) (string, bool) {
	s, ok := w.str(n, path)
	if !ok {
		return "", false
	}
	if !nameRE.MatchString(s) {
		w.errorf(n, path, "%s name %s must match [a-z0-9][a-z0-9_-]{0,62}", what, strconv.Quote(s))
		return "", false
	}
	return s, true
}

// looksSecret reports whether s looks like a credential pasted where a
// reference to one (a variable name, a path, a hash) belongs. Such values
// are never echoed back in problems.
func looksSecret(s string) bool {
	return strings.HasPrefix(s, "sk-ant-") || strings.HasPrefix(s, "http://") ||
		strings.HasPrefix(s, "https://") || len(s) > 200
}
