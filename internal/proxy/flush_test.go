package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/pricing"
)

// admitAll admits every request without a store, as draws on a grant.
type admitAll struct{}

// memDraw marks a reservation as a draw that settles in memory.
type memDraw struct{}

func (memDraw) SettlesInMemory() {}

func (admitAll) Reserve(_ context.Context, h budget.Hold) (budget.Reservation, error) {
	return budget.Reservation{RequestID: h.RequestID, Draw: memDraw{}}, nil
}
func (admitAll) Extend(context.Context, budget.Reservation, time.Duration) error { return nil }
func (admitAll) Settle(context.Context, budget.Reservation, money.Nanos) error   { return nil }

// gatedWriter blocks every write until the test opens the gate, and
// reports whether the gate was opened or the write gave up waiting.
type gatedWriter struct {
	gate   chan struct{}
	opened chan bool
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	select {
	case <-g.gate:
		g.opened <- true
	case <-time.After(5 * time.Second): // breaks the deadlock of a client waiting on the bookkeeping
		g.opened <- false
	}
	return len(p), nil
}

func (g *gatedWriter) Sync() error { return nil }

// A JSON answer drawn on a grant reaches the client before the gateway
// prices, logs and settles it: the client does not wait for the
// bookkeeping (here a spend log whose write waits until the client has the
// whole answer).
func TestJSONAnswerReachesTheClientBeforeTheBookkeeping(t *testing.T) {
	up := httptest.NewServer(fakeupstream.New(testKey))
	defer up.Close()
	u, _ := http.NewRequest("GET", up.URL, nil)
	tbl, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	st := NewState(testPolicy(t, "reject"), tbl, nil)
	gw := &gatedWriter{gate: make(chan struct{}), opened: make(chan bool, 1)}
	tr := NewTransport()
	defer tr.CloseIdleConnections()
	h, err := New(Options{Upstream: u.URL, State: func() *State { return st }, Budget: admitAll{}, Journal: &memJournal{entries: map[string]money.Nanos{}},
		Transport: tr, SpendLog: gw})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages", strings.NewReader(okBody))
	req.Header.Set("X-Api-Key", testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	close(gw.gate)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"usage"`) {
		t.Fatalf("status %d, body %q, %v", resp.StatusCode, body, err)
	}
	if !<-gw.opened {
		t.Error("the client had the answer only after the spend record was written")
	}
	srv.Close() // waits for the handler, whose bookkeeping outlived the answer
	h.Wait()
}
