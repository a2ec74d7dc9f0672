package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/clade-gateway/clade-gateway/internal/fakeupstream"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/testpolicy"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// TestNewEndUsersRaceAcrossReplicas: 1,000 end users nobody has seen send
// their first requests at once, four each, spread over three gateway
// processes on one Redis with admission grants on. Every hold stays live
// (the upstream holds the admitted requests) until every admission is
// decided, so each user must be admitted exactly what its default cap
// allows with all holds live, floor(2.5) = 2, never 3 (the cap skipped) and
// never fewer (a default doubled or a user created twice). The users' 30%
// alerts, crossed once the pairs settle, must reach the webhook once each
// although three replicas watch them.
func TestNewEndUsersRaceAcrossReplicas(t *testing.T) {
	const users, perUser, fits = 1000, 4, 2
	f, up := startUpstream(t)
	g := newGate()
	f.Behave = func(r *http.Request, model string, stream bool) fakeupstream.Behavior {
		g.wait(r.Context())
		return fakeupstream.Behavior{Usage: fakeupstream.Usage{InputTokens: 1200, OutputTokens: 300}}
	}
	userID := func(i int) string { return fmt.Sprintf("user-%04d", i) }
	params := func(i int) anthropic.MessageNewParams {
		return anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 300, Messages: userMsg("race"),
			Metadata: anthropic.MetadataParam{UserID: anthropic.String(userID(i))}}
	}
	est := sonnetEstimate(probeBodyLen(t, params(0)), 300)
	limit := est*fits + est/2
	hook := newHookSink(t)
	policy := testpolicy.Policy{
		Workspaces: []testpolicy.Workspace{{Name: "production", Keys: []testpolicy.Key{{Name: "prod", Env: "TEST_WORKSPACE_KEY"}}}},
		Teams:      []testpolicy.Team{{Name: "support"}},
		Webhooks:   []testpolicy.Webhook{{Name: "ops", URLEnv: "HOOK_URL", Format: "json"}},
		Services: []testpolicy.Service{{
			Name: "support-bot", Team: "support", Workspace: "production",
			Tokens:     []string{testutil.CanaryToken},
			Budgets:    []testpolicy.Budget{testpolicy.Monthly("100000")},
			Principals: []testpolicy.Principal{{From: "metadata.user_id", Budgets: []testpolicy.Budget{testpolicy.Daily(limit.String(), 0.3)}}},
		}},
		AdminTokens: []string{testutil.AdminToken},
	}
	// 4,000 requests at once on a shared two-core machine queue for
	// seconds behind each other: a store timeout of 500ms would refuse
	// some with 503, which says nothing about the caps.
	gws := startReplicas(t, 3, up.URL, policy, "CLADE_GRANT_WINDOW", "100ms", "HOOK_URL", hook.URL,
		"CLADE_NOTIFY_INTERVAL", "200ms", "CLADE_STORE_TIMEOUT", "10s")

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2000
	hc := &http.Client{Transport: tr}
	clients := make([]anthropic.Client, len(gws))
	for i, gw := range gws {
		clients[i] = anthropic.NewClient(option.WithBaseURL(gw.URL), option.WithAPIKey(testutil.CanaryToken),
			option.WithHTTPClient(hc), option.WithMaxRetries(0))
	}

	g.shut()
	admitted := make([]atomic.Int32, users)
	var refused atomic.Int64
	var failures sync.Map
	var wg sync.WaitGroup
	start := time.Now()
	for k := 0; k < users*perUser; k++ {
		if k%(perUser*10) == 0 {
			// Ten users' requests at a time, every few milliseconds: 4,000
			// connections opened at once overflow the listeners' accept
			// queues. Each user's four still race, and every admitted
			// hold stays live until all are decided.
			time.Sleep(2 * time.Millisecond)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := k / perUser
			var err error
			for try := 0; try < 3; try++ {
				_, err = clients[k%len(clients)].Messages.New(context.Background(), params(u))
				// Under -race beside other test binaries, a loaded replica
				// sometimes closes a kept-alive connection just as it is
				// reused; such a request never reached admission (a hold
				// placed for it would show in the counts below), so it is
				// sent again.
				if err == nil || !(errors.Is(err, io.EOF) || strings.Contains(err.Error(), "server closed idle connection")) {
					break
				}
			}
			var apiErr *anthropic.Error
			switch {
			case err == nil:
				admitted[u].Add(1)
			case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusPaymentRequired &&
				strings.Contains(apiErr.RawJSON(), "user "+userID(u)+" has reached the daily budget"):
				refused.Add(1)
			default:
				failures.Store(k, err)
				refused.Add(1) // counted so the wait below ends; reported after
			}
		}()
	}
	deadline := time.Now().Add(90 * time.Second)
	for g.arrived.Load()+refused.Load() < users*perUser {
		if time.Now().After(deadline) {
			g.release()
			wg.Wait()
			t.Fatalf("stuck: %d at the upstream, %d refused, of %d", g.arrived.Load(), refused.Load(), users*perUser)
		}
		time.Sleep(10 * time.Millisecond)
	}
	held := g.arrived.Load()
	t.Logf("%d first requests of %d new users decided in %v: %d held at the upstream, %d refused",
		users*perUser, users, time.Since(start).Round(time.Millisecond), held, refused.Load())
	g.release()
	wg.Wait()
	failures.Range(func(k, v any) bool {
		t.Errorf("request %v: %v", k, v)
		return true
	})
	for u := range users {
		if n := admitted[u].Load(); n != fits {
			t.Errorf("%s was admitted %d of its first %d requests, its default cap allows exactly %d", userID(u), n, perUser, fits)
		}
	}
	if held != users*fits {
		t.Errorf("%d requests reached the upstream, want %d", held, users*fits)
	}

	// Settled, every user has spent exactly its two requests, within its cap.
	want := actualCost * fits
	deadline = time.Now().Add(20 * time.Second)
	var rows principalPage
	for {
		rows = listPrincipals(t, gws[1].AdminURL, "support-bot", 1000, "")
		if len(rows.Principals) == users && allSpent(rows, want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(rows.Principals) != users {
		t.Fatalf("the store knows %d principals, want %d", len(rows.Principals), users)
	}
	for _, r := range rows.Principals {
		if s, _ := money.Parse(r.SpentUSD); s != want || s > limit {
			t.Errorf("%s spent %s, want %s (cap %s)", r.Value, s, want, limit)
		}
	}
	// Each user's 30% alert reaches the webhook once, from one replica.
	deadline = time.Now().Add(30 * time.Second)
	for hook.count(`"threshold":0.3`) < users && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // more notifier ticks on every replica
	if n := hook.count(`"threshold":0.3`); n != users {
		t.Errorf("%d alerts for %d users", n, users)
	}
	for u := 0; u < users; u += 97 {
		if n := hook.count(`"name":"support-bot/metadata.user_id/` + userID(u) + `"`); n != 1 {
			t.Errorf("%s alerted %d times", userID(u), n)
		}
	}
}

func allSpent(p principalPage, want money.Nanos) bool {
	for _, r := range p.Principals {
		if s, _ := money.Parse(r.SpentUSD); s != want {
			return false
		}
	}
	return true
}
