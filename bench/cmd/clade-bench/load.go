package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// shape is one kind of request the load generator sends.
type shape struct {
	stream  bool
	ttfb    time.Duration // upstream time to first byte (X-Bench-Ttfb)
	spacing time.Duration // upstream SSE event spacing (X-Bench-Spacing)
	deltas  int           // text deltas in the response (X-Bench-Deltas); 0: the fake's default
}

// requestBody is a realistic Messages request: about 1,200 tokens of
// prompt, as the fake's usage says.
func requestBody(stream bool) []byte {
	prompt := strings.Repeat("Summarise the following paragraph about budgets and metering for a service owner. ", 60)
	b, _ := json.Marshal(map[string]any{
		"model": "claude-sonnet-4-6", "max_tokens": 1024, "stream": stream,
		"messages": []any{map[string]any{"role": "user", "content": prompt}},
	})
	return b
}

// newClient is the load generator's client: one big keep-alive pool, so
// the only connections it opens are the first ones.
func newClient(maxConns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConns = maxConns
	tr.MaxIdleConnsPerHost = maxConns
	tr.IdleConnTimeout = 10 * time.Minute
	tr.DisableCompression = true
	return &http.Client{Transport: tr, Timeout: 5 * time.Minute}
}

// segment is what one load run against one target observed.
type segment struct {
	ok, failed int64
	wall       time.Duration
	lat        []time.Duration // per request: intended start (open loop) or send (closed loop) to EOF
	firstErr   string
}

type requester struct {
	t    *target
	sh   shape
	body []byte
}

func newRequester(t *target, sh shape) *requester {
	return &requester{t: t, sh: sh, body: requestBody(sh.stream)}
}

func (r *requester) newRequest(ctx context.Context) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.t.base+"/v1/messages", bytes.NewReader(r.body))
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("Anthropic-Version", "2023-06-01")
	h.Set("X-Api-Key", r.t.token)
	h.Set("X-Bench-Ttfb", r.sh.ttfb.String())
	h.Set("X-Bench-Spacing", r.sh.spacing.String())
	if r.sh.deltas > 0 {
		h.Set("X-Bench-Deltas", strconv.Itoa(r.sh.deltas))
	}
	return req
}

// do sends one request and drains the body to EOF, so the connection goes
// back to the pool. It reports whether the response was a complete 200.
func (r *requester) do(ctx context.Context) (bool, string) {
	resp, err := r.t.client.Do(r.newRequest(ctx))
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	tail := &tailWriter{}
	if _, err := io.Copy(tail, resp.Body); err != nil {
		return false, err.Error()
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Sprintf("status %d: %s", resp.StatusCode, tail.String())
	}
	if r.sh.stream && !strings.Contains(tail.String(), "message_stop") {
		return false, "stream ended without message_stop"
	}
	return true, ""
}

// tailWriter keeps the last bytes written: enough to see message_stop or
// an error envelope without holding bodies.
type tailWriter struct{ b []byte }

func (w *tailWriter) Write(p []byte) (int, error) {
	const keep = 256
	w.b = append(w.b, p...)
	if len(w.b) > keep {
		w.b = append(w.b[:0], w.b[len(w.b)-keep:]...)
	}
	return len(p), nil
}

func (w *tailWriter) String() string { return string(w.b) }

// closedLoop runs conc workers, each sending its next request as soon as
// the previous one ends, for d: the most the target can do.
func closedLoop(r *requester, conc int, d time.Duration) segment {
	var (
		mu  sync.Mutex
		seg segment
		wg  sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(d)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1024)
			var ok, failed int64
			var firstErr string
			for time.Now().Before(end) {
				t0 := time.Now()
				good, msg := r.do(context.Background())
				if good {
					ok++
					lat = append(lat, time.Since(t0))
				} else {
					failed++
					if firstErr == "" {
						firstErr = msg
					}
				}
			}
			mu.Lock()
			seg.ok += ok
			seg.failed += failed
			seg.lat = append(seg.lat, lat...)
			if seg.firstErr == "" {
				seg.firstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	seg.wall = time.Since(start)
	return seg
}

// openLoop sends requests at a fixed rate for d whatever the target's
// latency, and times each from when it was due, so a slow target cannot
// hide its queueing (no coordinated omission).
func openLoop(r *requester, rate float64, d time.Duration) segment {
	var (
		mu  sync.Mutex
		seg segment
		wg  sync.WaitGroup
	)
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	n := int(float64(d) / float64(interval))
	seg.lat = make([]time.Duration, 0, n)
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			good, msg := r.do(context.Background())
			l := time.Since(due)
			mu.Lock()
			defer mu.Unlock()
			if good {
				seg.ok++
				seg.lat = append(seg.lat, l)
				return
			}
			seg.failed++
			if seg.firstErr == "" {
				seg.firstErr = msg
			}
		}()
	}
	wg.Wait()
	seg.wall = time.Since(start)
	return seg
}

// holdStreams opens n SSE streams at about rampPerSec, and calls plateau
// once every stream has its first event (all n are open at once); the
// streams then run to their end. It returns how many completed.
func holdStreams(r *requester, n int, rampPerSec float64, plateau func(open int64)) segment {
	var (
		opened  atomic.Int64
		allOpen = make(chan struct{})
		once    sync.Once
		mu      sync.Mutex
		seg     segment
		wg      sync.WaitGroup
	)
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rampPerSec)
	for i := range n {
		if w := time.Until(start.Add(time.Duration(i) * interval)); w > 0 {
			time.Sleep(w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			good, msg := r.doStream(func() {
				if opened.Add(1) == int64(n) {
					once.Do(func() { close(allOpen) })
				}
			})
			mu.Lock()
			defer mu.Unlock()
			if good {
				seg.ok++
				return
			}
			seg.failed++
			if seg.firstErr == "" {
				seg.firstErr = msg
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-allOpen:
		plateau(opened.Load())
	case <-done:
		plateau(opened.Load()) // some failed before all were open
	}
	<-done
	seg.wall = time.Since(start)
	return seg
}

// doStream is do for a held stream: first calls back once message_start
// has arrived.
func (r *requester) doStream(first func()) (bool, string) {
	resp, err := r.t.client.Do(r.newRequest(context.Background()))
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return false, fmt.Sprintf("status %d: %s", resp.StatusCode, b)
	}
	buf := make([]byte, 4096)
	var seen []byte
	for !bytes.Contains(seen, []byte("message_start")) {
		n, err := resp.Body.Read(buf)
		seen = append(seen, buf[:n]...)
		if err != nil {
			return false, "stream ended before message_start: " + err.Error()
		}
	}
	first()
	tail := &tailWriter{}
	if _, err := io.Copy(tail, resp.Body); err != nil {
		return false, err.Error()
	}
	if !strings.Contains(tail.String(), "message_stop") {
		return false, "stream ended without message_stop"
	}
	return true, ""
}
