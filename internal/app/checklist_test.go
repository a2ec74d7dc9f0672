package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clade-gateway/clade-gateway/internal/app"
	"github.com/clade-gateway/clade-gateway/internal/budget/boltstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/redisstore"
	"github.com/clade-gateway/clade-gateway/internal/budget/storeopts"
	"github.com/clade-gateway/clade-gateway/internal/checklist"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
	"github.com/clade-gateway/clade-gateway/internal/trail"
)

// The command runs on the real clock, so the test folders' key dates are
// moved to a fixed age before today.
var createdRE = regexp.MustCompile(`created: \d{4}-\d{2}-\d{2}`)

func copyPolicy(t *testing.T, name string, keyAge time.Duration) string {
	t.Helper()
	src := filepath.Join("..", "checklist", "testdata", name)
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if keyAge > 0 {
			b = createdRE.ReplaceAll(b, []byte("created: "+time.Now().Add(-keyAge).UTC().Format(time.DateOnly)))
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// recordTrail writes token uses (ago, by token) and adjustments with the
// gateway's own writers, on clocks set that far back.
func recordTrail(t *testing.T, rec trail.Records, since time.Duration, uses map[string]time.Duration, adjusted []time.Duration) {
	t.Helper()
	cur := time.Now().Add(-since)
	lu := trail.NewLastUsed(rec, func() time.Time { return cur }, nil)
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	lu.Run(stopped)
	for tok, ago := range uses {
		cur = time.Now().Add(-ago)
		lu.Used(sha256.Sum256([]byte(tok)))
		lu.Run(stopped)
	}
	for _, ago := range adjusted {
		err := trail.AdjustmentLog{Records: rec, Now: time.Now}.RecordAdjustment(context.Background(),
			trail.Adjustment{At: time.Now().Add(-ago), Scope: "team", Name: "search", ID: "monthly", AmountUSD: "-250", Reason: "refund", Actor: "bob"})
		if err != nil {
			t.Fatal(err)
		}
	}
}

const day = 24 * time.Hour

// embeddedStore writes a trail into CLADE_DATA_DIR's store file and closes
// it, as a stopped gateway leaves it.
func embeddedStore(t *testing.T, since time.Duration, uses map[string]time.Duration, adjusted []time.Duration) string {
	dir := t.TempDir()
	st, err := boltstore.Open(filepath.Join(dir, "budgets.db"), storeopts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recordTrail(t, st, since, uses, adjusted)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func redisStore(t *testing.T, since time.Duration, uses map[string]time.Duration, adjusted []time.Duration) string {
	r := testutil.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), ContextTimeoutEnabled: true})
	defer rdb.Close()
	st, err := redisstore.New(rdb, storeopts.Options{Prefix: "cl"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recordTrail(t, st, since, uses, adjusted)
	return r.URL()
}

// statusLines maps item to status from the text report, checking that every
// item has exactly one line under its heading.
func statusLines(t *testing.T, out string) map[string]string {
	t.Helper()
	lineRE := regexp.MustCompile(`^  (PASS|WARN|FAIL) ([a-z_]+): \S`)
	got := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if m := lineRE.FindStringSubmatch(l); m != nil {
			if _, dup := got[m[2]]; dup {
				t.Errorf("two lines for %s", m[2])
			}
			got[m[2]] = m[1]
		}
	}
	if len(got) != len(checklist.Items()) {
		t.Errorf("%d item lines, want %d:\n%s", len(got), len(checklist.Items()), out)
	}
	return got
}

func runCL(env map[string]string, args ...string) (string, error) {
	var out bytes.Buffer
	err := app.Run(context.Background(), append([]string{"checklist"}, args...), func(k string) string { return env[k] }, nil, &out, &out)
	return out.String(), err
}

func TestChecklistCommandFailAll(t *testing.T) {
	policy := copyPolicy(t, "fail-all", 0)
	uses := map[string]time.Duration{"tok-search-api": 40 * day}
	for name, env := range map[string]map[string]string{
		"embedded": {"CLADE_DATA_DIR": embeddedStore(t, 60*day, uses, []time.Duration{5 * day})},
		"redis":    {"CLADE_REDIS_URL": redisStore(t, 60*day, uses, []time.Duration{5 * day}), "CLADE_REDIS_PREFIX": "cl"},
	} {
		t.Run(name, func(t *testing.T) {
			env["CLADE_ADMIN_LISTEN"] = "203.0.113.10:9090"
			out, err := runCL(env, policy)
			if err == nil || err.Error() != "checklist: 9 of 15 items fail" {
				t.Errorf("err = %v, want 9 of 15 items failing (exit status 1)", err)
			}
			want := map[string]string{
				"workspace_environment": "FAIL", "workspace_keys": "FAIL", "key_names": "WARN", "service_tokens": "FAIL",
				"service_budgets": "FAIL", "team_alerts": "FAIL", "key_rotation": "FAIL", "unused_tokens": "WARN",
				"service_owners": "WARN", "admin_tokens_named": "FAIL", "admin_token_count": "FAIL", "admin_listener": "FAIL",
				"budget_adjustments": "WARN", "store_failure_allow": "WARN", "unknown_model_charge_max": "WARN",
			}
			got := statusLines(t, out)
			for id, s := range want {
				if got[id] != s {
					t.Errorf("%s = %q, want %s", id, got[id], s)
				}
			}
			for _, frag := range []string{
				"candidates for revocation: ranker/6561ba73… (never used), search-api/search-api-1 (last used ",
				"budget adjustments in the last 30 days to review: ",
				"-250 USD by bob",
				"\n0 pass, 6 warn, 9 fail\n",
			} {
				if !strings.Contains(out, frag) {
					t.Errorf("output lacks %q:\n%s", frag, out)
				}
			}
		})
	}
}

func TestChecklistCommandPassAll(t *testing.T) {
	policy := copyPolicy(t, "pass-all", 10*day)
	uses := map[string]time.Duration{"tok-search-api": 2 * day, "tok-sandbox": 29 * day}
	for name, env := range map[string]map[string]string{
		"embedded": {"CLADE_DATA_DIR": embeddedStore(t, 90*day, uses, []time.Duration{31 * day})},
		"redis":    {"CLADE_REDIS_URL": redisStore(t, 90*day, uses, []time.Duration{31 * day}), "CLADE_REDIS_PREFIX": "cl"},
	} {
		t.Run(name, func(t *testing.T) {
			env["CLADE_CONFIG"] = policy // the default PATH
			out, err := runCL(env)
			if err != nil {
				t.Fatalf("err = %v (exit status 1), want nil:\n%s", err, out)
			}
			for id, s := range statusLines(t, out) {
				if s != "PASS" {
					t.Errorf("%s = %s, want PASS", id, s)
				}
			}
			if !strings.HasSuffix(out, "\n15 pass, 0 warn, 0 fail\n") {
				t.Errorf("summary:\n%s", out)
			}

			out, err = runCL(env, "--format", "json", policy)
			if err != nil {
				t.Fatal(err)
			}
			var rep checklist.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("--format json is not JSON: %v\n%s", err, out)
			}
			if !rep.Live || rep.Summary.Pass != 15 || len(rep.Items) != 15 || rep.Items[0].Heading != "environments" {
				t.Errorf("json report: %+v", rep)
			}
		})
	}
}

// Without a store the live items warn that they were not checked; a locked
// or missing store file says why.
func TestChecklistCommandWithoutStore(t *testing.T) {
	policy := copyPolicy(t, "pass-all", 10*day)
	out, err := runCL(map[string]string{}, "--format=json", policy)
	if err != nil {
		t.Fatal(err)
	}
	var rep checklist.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Live || rep.Summary != (checklist.Summary{Pass: 13, Warn: 2}) {
		t.Errorf("summary %+v live %v, want 13 pass and the 2 live items warning", rep.Summary, rep.Live)
	}

	dir := t.TempDir()
	st, err := boltstore.Open(filepath.Join(dir, "budgets.db"), storeopts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out, err = runCL(map[string]string{"CLADE_DATA_DIR": dir}, policy)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "WARN unused_tokens: not checked: the store could not be read: budget: "+filepath.Join(dir, "budgets.db")+" is locked by a running gateway") {
		t.Errorf("locked store:\n%s", out)
	}
	out, _ = runCL(map[string]string{"CLADE_DATA_DIR": t.TempDir()}, policy)
	if !strings.Contains(out, "WARN budget_adjustments: not checked: the store could not be read: budget: no embedded store at ") {
		t.Errorf("missing store:\n%s", out)
	}
}

func TestChecklistCommandArgs(t *testing.T) {
	for _, args := range [][]string{{"--format", "yaml", "x"}, {"a", "b"}, {"--verbose"}} {
		if _, err := runCL(map[string]string{}, args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if _, err := runCL(map[string]string{"CLADE_CHECKLIST_ADMIN_TOKEN_LIMIT": "0"}, copyPolicy(t, "pass-all", day)); err == nil {
		t.Error("a limit of 0 accepted")
	}
	out, err := runCL(map[string]string{}, filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil || out != "" {
		t.Errorf("missing policy: %v %q", err, out)
	}
}
