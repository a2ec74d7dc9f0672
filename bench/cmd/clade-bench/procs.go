package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clade-gateway/clade-gateway/internal/testproc"
)

// proc is a child process the bench started and stops.
type proc struct {
	name string
	log  string // its stderr
	*testproc.Process
}

func (p *proc) pid() int { return p.Pid() }

// stop asks the process to shut down and kills it if it does not in time.
func (p *proc) stop() {
	if p == nil {
		return
	}
	_ = p.Stop(10 * time.Second)
}

// start runs bin with args and exactly env (plus the Go runtime tunables
// the bench itself was given, so every child runs alike). Its stdout goes
// to stdoutPath ("" discards it), its stderr to a log file in dir. The
// children cannot outlive the bench, even if it is killed.
func start(dir, name, bin string, args []string, env []string, stdoutPath string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	cmd.Env = env
	cmd.Dir = dir
	p := &proc{name: name, log: filepath.Join(dir, name+".stderr")}
	errf, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = errf
	if stdoutPath != "" {
		outf, err := os.Create(stdoutPath)
		if err != nil {
			return nil, err
		}
		cmd.Stdout = outf
	}
	p.Process, err = testproc.Start(cmd)
	// The child holds its own descriptors now.
	errf.Close()
	if f, ok := cmd.Stdout.(*os.File); ok {
		f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return p, nil
}

// tail returns the end of the process's stderr, for error messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// buildAll builds the three programs into dir with the flags `make build`
// uses, so the gateway measured is the one shipped.
//
// With profile, the gateway is built with the benchprofile tag: it then
// serves Go's profiles on the address in CLADE_BENCH_PPROF.
func buildAll(root, dir string, symbols, profile bool, abSrc string) (map[string]string, error) {
	ldflags := "-ldflags=-s -w"
	if symbols {
		ldflags = "-ldflags="
	}
	tags := "-tags="
	if profile {
		tags = "-tags=benchprofile"
	}
	out := map[string]string{}
	for name, pkg := range map[string]string{
		"clade-gateway": "./cmd/clade-gateway",
		"fake-upstream": "./bench/cmd/fake-upstream",
		"bare-proxy":    "./bench/cmd/bare-proxy",
	} {
		bin := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-trimpath", ldflags, tags, "-o", bin, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
		}
		out[name] = bin
	}
	if abSrc != "" {
		bin := filepath.Join(dir, "clade-gateway-ab")
		cmd := exec.Command("go", "build", "-trimpath", ldflags, "-o", bin, "./cmd/clade-gateway")
		cmd.Dir = abSrc
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build in %s: %w\n%s", abSrc, err, b)
		}
		out["clade-gateway-ab"] = bin
	}
	return out, nil
}

// moduleRoot is the directory holding go.mod.
func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(b))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run the bench from inside the clade-gateway module")
	}
	return filepath.Dir(gomod), nil
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) { return testproc.FreePort() }

func loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// waitHTTP waits until url answers 200, or p exits.
func waitHTTP(p *proc, url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.Done():
			return fmt.Errorf("%s exited at start:\n%s", p.name, p.tail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s: %w\n%s", p.name, url, err, p.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startRedis starts a private redis-server: loopback, no persistence.
func startRedis(dir string) (*proc, *redis.Client, error) {
	rdir := filepath.Join(dir, "redis")
	if err := os.MkdirAll(rdir, 0o700); err != nil {
		return nil, nil, err
	}
	rd, err := testproc.NewRedis(testproc.RedisConfig{Dir: rdir})
	if err != nil {
		return nil, nil, err
	}
	p := &proc{name: "redis", log: rd.LogFile(), Process: rd.Process()}
	return p, redis.NewClient(&redis.Options{Addr: rd.Addr()}), nil
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit, for the
// bench and (inherited) its children: 5,000 streams need three times as
// many descriptors in the gateway.
func raiseFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	return rl.Cur, nil
}
