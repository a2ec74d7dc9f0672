package notify

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Announcement is a message about something other than one budget's
// threshold: a reconciliation finding, say. It goes to every webhook, once
// across replicas and restarts per Key.
type Announcement struct {
	Event  string            // the json format's "event", e.g. reconcile_unmetered
	Key    string            // what makes it unique; announced once per Key
	Text   string            // the one-line human message
	Fields map[string]string // more json fields (exact decimal strings for amounts)
	// Keep is how long the once-only claim lasts.
	Keep time.Duration
}

// Announce posts a to every webhook in the background, unless it was
// announced before (the claim is in the shared store).
func (n *Notifier) Announce(ctx context.Context, a Announcement) {
	hooks := n.cfg.Webhooks()
	if len(hooks) == 0 {
		return
	}
	ok, err := n.cfg.Claims.ClaimNotification(ctx, "announce:"+a.Event+":"+a.Key, a.Keep)
	if err != nil {
		n.log.Warn("announcement not claimed; not sent", zap.String("event", a.Event), zap.Error(err))
		return
	}
	if !ok {
		return
	}
	for _, h := range hooks {
		var body []byte
		if strings.EqualFold(h.Format, "json") {
			m := map[string]string{}
			for k, v := range a.Fields {
				m[k] = v
			}
			m["event"], m["text"] = a.Event, a.Text
			body, err = json.Marshal(m)
		} else {
			body, err = json.Marshal(struct {
				Text string `json:"text"`
			}{a.Text})
		}
		if err != nil {
			n.metrics.failed.Inc()
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.send(ctx, h, body, n.log.With(zap.String("webhook", h.Name), zap.String("event", a.Event)))
		}()
	}
}
