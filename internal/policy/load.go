package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

// LoadOptions are the outside world a load may read. Nil fields default to
// the process's own (os.Getenv, os.ReadFile, time.Now).
type LoadOptions struct {
	// Getenv reads the variables named by keys' env: and webhooks' url_env:.
	Getenv func(string) string
	// ReadFile reads secret files (keys' file:, webhooks' url_file:). Policy
	// files themselves are always read from disk.
	ReadFile func(string) ([]byte, error)
	// ResolveSecrets reads every secret. Without it (check-config, review
	// of a change on a laptop) only their references are checked, and
	// Key.Secret and Webhook.URL stay empty.
	ResolveSecrets bool
	// Now is the clock a key's created date is checked against.
	Now func() time.Time
}

// File names of folder mode.
const (
	folderMain  = "clade.yaml"
	folderTeams = "teams"
)

// Load reads, validates and compiles the policy at path, which is a single
// file or a folder (clade.yaml plus teams/*.yaml). Every problem found is
// returned at once in a *ValidationError; other errors mean path itself
// could not be reached.
func Load(path string, o LoadOptions) (*Policy, error) {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("policy: load: %w", err)
	}
	probs := &problems{}
	rp := &rawPolicy{
		onStoreFailure: FailReject,
		unknownTools:   UnknownToolsReject,
		estimate:       defaultServerToolAllowance,
		pricing:        Pricing{UnknownModel: UnknownReject},
	}
	if fi.IsDir() {
		if err := loadFolder(path, o, rp, probs); err != nil {
			return nil, err
		}
	} else if root := parseFile(path, probs, false); root != nil {
		w := &walker{file: path, probs: probs, now: o.Now}
		w.parsePlatform(root, rp)
	}
	p := compile(rp, o, probs)
	if err := probs.err(); err != nil {
		return nil, err
	}
	return p, nil
}

func loadFolder(dir string, o LoadOptions, rp *rawPolicy, probs *problems) error {
	main := filepath.Join(dir, folderMain)
	if _, err := os.Stat(main); errors.Is(err, fs.ErrNotExist) {
		probs.add(pos{file: main}, "missing: a policy folder needs %s with the workspaces", folderMain)
	} else if root := parseFile(main, probs, false); root != nil {
		w := &walker{file: main, probs: probs, now: o.Now}
		w.parsePlatform(root, rp)
	}
	teams, odd, err := teamFiles(dir)
	if err != nil {
		return err
	}
	for _, f := range odd {
		probs.add(pos{file: f}, "team files must end in .yaml; this one would be ignored")
	}
	for _, f := range teams {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		if !nameRE.MatchString(name) {
			probs.add(pos{file: f}, "file name %s is not a team name: it must match [a-z0-9][a-z0-9_-]{0,62}", strconv.Quote(name))
			continue
		}
		rp.teams = append(rp.teams, &rawTeam{at: pos{file: f}, name: name})
		t := rp.teams[len(rp.teams)-1]
		if root := parseFile(f, probs, true); root != nil {
			w := &walker{file: f, probs: probs, now: o.Now}
			w.parseTeamFile(root, t, rp)
		}
	}
	return nil
}

// teamFiles lists <dir>/teams/*.yaml in name order, and separately the
// *.yml files someone meant as team files. Dot files and directories are
// skipped: Kubernetes mounts a ConfigMap with ..data links beside the files.
func teamFiles(dir string) (teams, odd []string, err error) {
	tdir := filepath.Join(dir, folderTeams)
	ents, err := os.ReadDir(tdir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("policy: list team files: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		f := filepath.Join(tdir, name)
		if fi, err := os.Stat(f); err != nil || fi.IsDir() {
			continue // a dangling link or a directory is not a team file
		}
		switch {
		case strings.HasSuffix(name, ".yaml"):
			teams = append(teams, f)
		case strings.HasSuffix(name, ".yml"):
			odd = append(odd, f)
		}
	}
	slices.Sort(teams)
	slices.Sort(odd)
	return teams, odd, nil
}

// teamFileKeys are the only top-level keys of a team file.
var teamFileKeys = []string{"budgets", "services"}

// parseTeamFile reads teams/<team>.yaml: the team's own budgets and its
// services. Everything that belongs to the platform is refused with a
// pointer to where it goes, so a team cannot grant itself a workspace or
// change prices in its own file.
func (w *walker) parseTeamFile(root *yaml.Node, t *rawTeam, rp *rawPolicy) {
	for _, e := range w.entries(root, "") {
		switch {
		case e.key == "budgets":
			t.budgets = w.parseBudgets(e.val, e.path, budget.ScopeTeam, t.name)
		case e.key == "services":
			for _, se := range w.entries(e.val, e.path) {
				if s := w.parseService(se, t.name); s != nil {
					rp.services = append(rp.services, s)
				}
			}
		case e.key == "teams":
			w.errorf(e.at, e.path, "a team file defines only its own team (%s, from the file name): other teams get files of their own",
				strconv.Quote(t.name))
		case contains(platformKeys, e.key):
			w.errorf(e.at, e.path, "belongs in %s, not in a team file (allowed here: %s)", folderMain, strings.Join(teamFileKeys, ", "))
		default:
			w.errorf(e.at, e.path, "unknown key (allowed in a team file: %s)", strings.Join(teamFileKeys, ", "))
		}
	}
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseFile reads one YAML file and returns its top node, or nil when it
// cannot be used (reported). An empty file is allowed only if emptyOK.
func parseFile(path string, probs *problems, emptyOK bool) *yaml.Node {
	b, err := os.ReadFile(path)
	if err != nil {
		if u := errors.Unwrap(err); u != nil {
			err = u // a *PathError repeats the path the problem already names
		}
		probs.add(pos{file: path}, "cannot read: %v", err)
		return nil
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		if !emptyOK {
			probs.add(pos{file: path}, "the policy is empty")
		}
		return nil
	} else if err != nil {
		probs.add(yamlErrorPos(path, err), "%s", yamlErrorMsg(err))
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			line = yamlErrorPos(path, err).line
		}
		probs.add(pos{file: path, line: line}, "more than one YAML document: a policy file holds exactly one")
		return nil
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

func yamlErrorPos(path string, err error) pos {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return pos{file: path, line: line}
	}
	return pos{file: path}
}

func yamlErrorMsg(err error) string {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		return "invalid YAML: " + m[2]
	}
	return "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")
}

// Sources lists the files the policy at path is loaded from: path itself,
// or a folder's clade.yaml and team files. Secret files are not included.
func Sources(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("policy: sources: %w", err)
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	teams, odd, err := teamFiles(path)
	if err != nil {
		return nil, err
	}
	// .yml files are listed too: adding one makes the policy invalid, and a
	// poller should notice that.
	return append(append([]string{filepath.Join(path, folderMain)}, teams...), odd...), nil
}

// Fingerprint changes whenever a file of the policy at path is added,
// removed or edited. It hashes contents rather than trusting mtimes, so a
// touch or a copy that keeps the bytes does not trigger a reload. Take the
// fingerprint before Load: an edit during the load then shows on the next
// poll.
func Fingerprint(path string) (string, error) {
	files, err := Sources(path)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("policy: fingerprint: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00%x\n", f, len(b), sha256.Sum256(b))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
