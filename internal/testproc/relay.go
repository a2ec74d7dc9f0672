package testproc

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Relay is a TCP relay on loopback in front of a real server (Redis). It
// injects the one fault a dead server cannot: a command that reached the
// server and ran there, whose reply the client never gets, after which the
// client's reconnect is refused. That is what a client sees when Redis
// dies between executing a script and answering it.
type Relay struct {
	t      testing.TB
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	cut   []byte // arm: the next client write containing it triggers the fault
	cuts  int
	wg    sync.WaitGroup
}

// StartRelay listens on a free loopback port and forwards to target.
func StartRelay(t testing.TB, target string) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("relay: listen: %v", err)
	}
	r := &Relay{t: t, target: target, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	r.serve(ln)
	t.Cleanup(r.close)
	return r
}

// Addr is host:port of the relay.
func (r *Relay) Addr() string { return r.addr }

// URL is a redis:// URL for CLADE_REDIS_URL.
func (r *Relay) URL() string { return "redis://" + r.addr + "/0" }

// CutOn arms the fault: the next client write containing pattern is
// forwarded, the server's reply to it is read and dropped, and then the
// listener and every connection are closed, so the client's retry finds
// nothing listening. Reopen brings the relay back on the same address.
func (r *Relay) CutOn(pattern []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = append([]byte(nil), pattern...)
}

// Cuts is how many times the fault fired.
func (r *Relay) Cuts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cuts
}

// Reopen listens again on the relay's address after a cut.
func (r *Relay) Reopen() {
	r.t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		if ln, err = net.Listen("tcp", r.addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("relay: listen again on %s: %v", r.addr, err)
	}
	r.serve(ln)
}

func (r *Relay) serve(ln net.Listener) {
	r.mu.Lock()
	r.ln = ln
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.pipe(c)
			}()
		}
	}()
}

func (r *Relay) pipe(client net.Conn) {
	server, err := net.Dial("tcp", r.target)
	if err != nil {
		client.Close()
		return
	}
	if !r.track(client, server) {
		return
	}
	defer r.untrack(client, server)
	// A fired cut makes the server-to-client copy drop whatever arrives.
	var drop atomic.Bool
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 && !drop.Load() {
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				client.Close()
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			fire := r.take(buf[:n])
			if fire {
				drop.Store(true)
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
			if fire {
				// Let the server run the command before the lights go out.
				time.Sleep(100 * time.Millisecond)
				r.fault()
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// take reports whether p fires the armed cut, disarming it.
func (r *Relay) take(p []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cut == nil || !bytes.Contains(p, r.cut) {
		return false
	}
	r.cut = nil
	r.cuts++
	return true
}

// fault closes the listener first, so a reconnect is refused, then every
// connection.
func (r *Relay) fault() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ln.Close()
	for c := range r.conns {
		c.Close()
	}
}

func (r *Relay) track(cs ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns == nil {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		r.conns[c] = struct{}{}
	}
	return true
}

func (r *Relay) untrack(cs ...net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(r.conns, c)
	}
}

func (r *Relay) close() {
	r.mu.Lock()
	r.ln.Close()
	for c := range r.conns {
		c.Close()
	}
	r.conns = nil
	r.mu.Unlock()
	r.wg.Wait()
}
