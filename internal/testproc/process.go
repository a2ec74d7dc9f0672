package testproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is a child process started by Start. Its exit is collected by
// one goroutine, so Done, Exited and the signalling methods may be used
// from any goroutine.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result; written before done is closed
}

// Start starts cmd (configured by the caller: arguments, environment,
// output) with SIGKILL as its parent-death signal, so the child cannot
// outlive the test binary or the bench even if that is killed.
func Start(cmd *exec.Cmd) (*Process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the exit and returns exec.Cmd.Wait's error (nil for a
// clean exit).
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Err is Wait's error once the process has exited, nil before.
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Signal sends sig; once the process has exited it is a no-op (os.Process
// knows when its child was reaped, so a signal never reaches a reused pid).
func (p *Process) Signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %v to pid %d: %w", sig, p.Pid(), err)
	}
	return nil
}

// Pause stops the process (SIGSTOP): its listening socket still accepts
// connections, but nothing is answered, which is what a client sees of a
// server stalled by swapping, a long fork or a debugger.
func (p *Process) Pause() error { return p.Signal(syscall.SIGSTOP) }

// Continue resumes a paused process (SIGCONT).
func (p *Process) Continue() error { return p.Signal(syscall.SIGCONT) }

// Kill sends SIGKILL (no shutdown of any kind, as in a crash or an OOM
// kill) and waits for the exit. A paused process is killed too. Idempotent.
func (p *Process) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop asks the process to shut down (SIGTERM, delivered even if it is
// paused) and waits up to grace; then it is killed and Stop says so.
// Otherwise Stop returns the exit's error (nil for a clean exit).
// Idempotent.
func (p *Process) Stop(grace time.Duration) error {
	_ = p.Signal(syscall.SIGTERM)
	_ = p.Signal(syscall.SIGCONT)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		p.Kill()
		return fmt.Errorf("pid %d did not exit within %v of SIGTERM; killed", p.Pid(), grace)
	}
}
