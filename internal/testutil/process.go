package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/testproc"
)

// build is the one clade-gateway binary of this test binary's run: tests
// that need real OS processes share it, so the link happens once.
var build struct {
	once sync.Once
	path string
	err  error
}

// BuildBinary builds cmd/clade-gateway once per test binary run and returns
// the executable's path. The binary lives in a fixed place under the temp
// dir, keyed by the module root, and is replaced by an atomic rename: runs
// do not pile up copies, and two test binaries building at once (go test
// runs packages in parallel) never execute a half-written file.
func BuildBinary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() { build.path, build.err = buildBinary() })
	if build.err != nil {
		t.Fatalf("build clade-gateway: %v", build.err)
	}
	return build.path
}

func buildBinary() (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("go not on PATH: %w", err)
	}
	out, err := exec.Command(gobin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the clade-gateway module")
	}
	root := filepath.Dir(gomod)
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), "clade-gateway-test-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	final := filepath.Join(dir, "clade-gateway")
	tmp := fmt.Sprintf("%s.%d.tmp", final, os.Getpid())
	cmd := exec.Command(gobin, "build", "-o", tmp, "./cmd/clade-gateway")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return final, nil
}

// Process is the clade-gateway binary running as a real OS process.
type Process struct {
	URL, AdminURL string
	// Logs is the process's stderr (JSON logs); Spend is its stdout (the
	// spend log, unless CLADE_SPEND_LOG says otherwise).
	Logs, Spend *Buffer
	Dir         string // CLADE_DATA_DIR
	Env         map[string]string

	proc *testproc.Process
}

// StartProcess runs bin with env (CLADE_* settings; the listeners, data dir
// and test-friendly intervals are filled in unless env sets them) and waits
// until /readyz answers 200. The process gets only PATH from the test's own
// environment, so a developer's CLADE_* variables cannot change a test. It
// is stopped gracefully at cleanup, and killed if the test binary dies.
func StartProcess(t testing.TB, bin string, env map[string]string) *Process {
	t.Helper()
	e := map[string]string{
		"CLADE_LISTEN":               "127.0.0.1:" + strconv.Itoa(FreePort(t)),
		"CLADE_ADMIN_LISTEN":         "127.0.0.1:" + strconv.Itoa(FreePort(t)),
		"CLADE_DATA_DIR":             t.TempDir(),
		"CLADE_POLICY_POLL_INTERVAL": "100ms",
		"CLADE_SHUTDOWN_GRACE":       "5s",
		// Tests read the logs while the gateway runs.
		"CLADE_LOG_FLUSH_INTERVAL": "0",
		"PATH":                     os.Getenv("PATH"),
	}
	for k, v := range env {
		e[k] = v
	}
	p := &Process{Logs: &Buffer{}, Spend: &Buffer{}, Dir: e["CLADE_DATA_DIR"], Env: e}
	p.URL, p.AdminURL = "http://"+e["CLADE_LISTEN"], "http://"+e["CLADE_ADMIN_LISTEN"]
	cmd := exec.Command(bin)
	for k, v := range e {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = p.Spend, p.Logs
	var err error
	if p.proc, err = testproc.Start(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })

	deadline := time.Now().Add(15 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-p.proc.Done():
			t.Fatalf("gateway process exited at start: %v\nstderr:\n%s", p.proc.Err(), p.Logs.String())
		default:
		}
		resp, err := client.Get(p.AdminURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway process not ready: %v\nstderr:\n%s", err, p.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pid is the process id.
func (p *Process) Pid() int { return p.proc.Pid() }

// Stop sends SIGTERM and waits for the process to exit; after the shutdown
// grace plus five seconds it is killed. It returns the exit error (nil for
// a clean exit). Idempotent.
func (p *Process) Stop() error {
	grace, err := time.ParseDuration(p.Env["CLADE_SHUTDOWN_GRACE"])
	if err != nil {
		grace = 30 * time.Second
	}
	return p.proc.Stop(grace + 5*time.Second)
}

// Kill sends SIGKILL (no shutdown, no settlement) and waits for the exit.
func (p *Process) Kill() { p.proc.Kill() }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool { return p.proc.Exited() }
