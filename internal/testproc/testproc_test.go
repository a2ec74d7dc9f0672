package testproc

import (
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the child process of the Process tests: with
// TESTPROC_CHILD set it plays that role instead of running tests.
func TestMain(m *testing.M) {
	switch os.Getenv("TESTPROC_CHILD") {
	case "":
		os.Exit(m.Run())
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
	case "exit-on-term":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		os.Stdout.WriteString("ready\n")
		<-ch
		os.Exit(0)
	}
	os.Stdout.WriteString("ready\n")
	time.Sleep(time.Minute)
	os.Exit(3)
}

// child starts the test binary in the given role and waits until it says
// it is ready (its signal handling is in place).
func child(t *testing.T, role string) *Process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TESTPROC_CHILD="+role)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("child %s: %q %v", role, buf, err)
	}
	return p
}

func TestStopWaitsForACleanExit(t *testing.T) {
	p := child(t, "exit-on-term")
	if err := p.Stop(10 * time.Second); err != nil {
		t.Errorf("Stop of a child that exits on SIGTERM = %v, want nil", err)
	}
	if !p.Exited() {
		t.Error("not exited after Stop")
	}
	if err := p.Stop(time.Second); err != nil {
		t.Errorf("second Stop = %v, want the same nil", err)
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	p := child(t, "ignore-term")
	start := time.Now()
	err := p.Stop(300 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Stop of a child ignoring SIGTERM = %v, want a killed error", err)
	}
	if !p.Exited() {
		t.Error("not exited after Stop")
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("killed after %v, before the grace", took)
	}
}

func TestStopReachesAPausedProcess(t *testing.T) {
	p := child(t, "exit-on-term")
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Errorf("Stop of a paused child = %v, want a clean exit", err)
	}
}

func TestSignalAfterExitIsANoop(t *testing.T) {
	p := child(t, "ignore-term")
	p.Kill()
	if err := p.Wait(); err == nil {
		t.Error("Wait after SIGKILL = nil, want the signal")
	}
	if err := p.Pause(); err != nil {
		t.Errorf("Pause after exit = %v", err)
	}
	p.Kill() // idempotent: must not block
}

func TestRedisKillPauseRestart(t *testing.T) {
	r := StartRedis(t)
	set := func() error { _, err := Command(r.Addr(), time.Second, "SET", "k", "v"); return err }
	get := func() (string, error) { return Command(r.Addr(), time.Second, "GET", "k") }
	if err := set(); err != nil {
		t.Fatal(err)
	}
	if v, err := get(); v != "v" || err != nil {
		t.Fatalf("GET = %q, %v", v, err)
	}

	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	if _, err := Command(r.Addr(), 200*time.Millisecond, "PING"); err == nil {
		t.Error("a paused server answered PING")
	}
	if err := r.Continue(); err != nil {
		t.Fatal(err)
	}
	if v, err := get(); v != "v" || err != nil {
		t.Errorf("GET after Continue = %q, %v", v, err)
	}

	pid := r.Pid()
	r.Kill()
	if _, err := Command(r.Addr(), 200*time.Millisecond, "PING"); err == nil {
		t.Error("a killed server answered PING")
	}
	if r.Pid() != 0 {
		t.Error("Pid of a killed server is not 0")
	}
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	if r.Pid() == pid || r.Pid() == 0 {
		t.Errorf("restarted server's pid %d (was %d)", r.Pid(), pid)
	}
	if v, err := get(); v != "" || err != nil {
		t.Errorf("GET after an empty restart = %q, %v; want nothing", v, err)
	}
}

func TestRedisRestartKeepsAnFsyncedAOF(t *testing.T) {
	r := StartRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	if _, err := Command(r.Addr(), time.Second, "SET", "k", "kept"); err != nil {
		t.Fatal(err)
	}
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	if v, err := Command(r.Addr(), time.Second, "GET", "k"); v != "kept" || err != nil {
		t.Errorf("GET after SIGKILL and restart = %q, %v; want the acknowledged write", v, err)
	}
}

func TestRedisOnATakenPortFailsWithItsLog(t *testing.T) {
	r := StartRedis(t)
	_, err := NewRedis(RedisConfig{Port: r.Port})
	if err == nil {
		t.Fatal("a second server on a taken port started")
	}
	if !strings.Contains(err.Error(), "exited at start") {
		t.Errorf("error = %v, want the early exit reported", err)
	}
}

func TestCommandReplies(t *testing.T) {
	r := StartRedis(t)
	if v, err := Command(r.Addr(), time.Second, "INCRBY", "n", "41"); v != "41" || err != nil {
		t.Errorf("integer reply = %q, %v", v, err)
	}
	if _, err := Command(r.Addr(), time.Second, "NOSUCHCOMMAND"); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("error reply = %v", err)
	}
	if v, err := Command(r.Addr(), time.Second, "SET", "k", "a b\r\nc"); v != "OK" || err != nil {
		t.Errorf("status reply = %q, %v", v, err)
	}
	if v, err := Command(r.Addr(), time.Second, "GET", "k"); v != "a b\r\nc" || err != nil {
		t.Errorf("bulk reply = %q, %v", v, err)
	}
}

func TestClusterServesEverySlot(t *testing.T) {
	c := StartCluster(t, 3)
	if len(c.Addrs()) != 3 {
		t.Fatalf("addrs %v", c.Addrs())
	}
	for _, a := range c.Addrs() {
		info, err := Command(a, time.Second, "CLUSTER", "INFO")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"cluster_state:ok", "cluster_slots_assigned:16384", "cluster_known_nodes:3", "cluster_size:3"} {
			if !strings.Contains(info, want) {
				t.Errorf("%s: CLUSTER INFO lacks %s:\n%s", a, want, info)
			}
		}
	}
	dirs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		dirs[i] = n.Dir
	}
	c.Close()
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("node directory %s left behind: %v", d, err)
		}
	}
}

func TestRelayDropsTheReplyAndRefusesTheRetry(t *testing.T) {
	r := StartRedis(t)
	relay := StartRelay(t, r.Addr())
	if v, err := Command(relay.Addr(), time.Second, "SET", "k", "before"); v != "OK" || err != nil {
		t.Fatalf("through the relay: %q, %v", v, err)
	}
	relay.CutOn([]byte("cut-here"))
	if _, err := Command(relay.Addr(), 2*time.Second, "SET", "k", "cut-here"); err == nil {
		t.Error("the cut command's reply arrived")
	}
	if _, err := Command(relay.Addr(), 200*time.Millisecond, "PING"); err == nil {
		t.Error("the relay accepted a connection after the cut")
	}
	if v, err := Command(r.Addr(), time.Second, "GET", "k"); v != "cut-here" {
		t.Errorf("the cut command did not run on the server: GET = %q, %v", v, err)
	}
	relay.Reopen()
	if v, err := Command(relay.Addr(), time.Second, "PING"); v != "PONG" || err != nil {
		t.Errorf("after Reopen: %q, %v", v, err)
	}
	if relay.Cuts() != 1 {
		t.Errorf("Cuts = %d, want 1", relay.Cuts())
	}
}

func TestWaitTCP(t *testing.T) {
	r := StartRedis(t)
	if err := WaitTCP(r.Addr(), time.Second); err != nil {
		t.Error(err)
	}
	if err := WaitTCP(loopback(Port(t)), 100*time.Millisecond); err == nil {
		t.Error("WaitTCP on a closed port succeeded")
	}
}

// TestImportsOnlyTheStandardLibrary keeps the package a leaf: the tests of
// any package, those the application is built from included, can use it.
func TestImportsOnlyTheStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/clade-gateway/clade-gateway/internal/testproc" {
			t.Errorf("testproc depends on %s", p)
		}
	}
}
