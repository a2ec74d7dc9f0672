package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// errPermanent marks a failure that retrying cannot fix (a 4xx other than
// 408 and 429: a deleted Slack hook answers 404 forever).
var errPermanent = errors.New("notify: permanent webhook failure")

// deliver posts ev to h, retrying with exponential backoff until it
// succeeds, fails permanently, runs out of attempts or ctx ends.
//
// The webhook URL embeds a credential, so it never reaches a log line or an
// error: only h.Name identifies the webhook.
func (n *Notifier) deliver(ctx context.Context, h policy.Webhook, ev event) {
	log := n.log.With(zap.String("webhook", h.Name),
		zap.String("budget", ev.status.Budget.Label()), zap.Float64("threshold", ev.threshold))
	body, err := ev.body(h.Format)
	if err != nil {
		n.metrics.failed.Inc()
		log.Error("encode webhook body", zap.Error(err))
		return
	}
	n.send(ctx, h, body, log)
}

// send posts body to h with deliver's retries.
func (n *Notifier) send(ctx context.Context, h policy.Webhook, body []byte, log *zap.Logger) {
	wait := n.cfg.BaseBackoff
	for attempt := 1; ; attempt++ {
		retryAfter, err := n.post(ctx, string(h.URL), body)
		if err == nil {
			n.metrics.sent.Inc()
			log.Info("webhook sent", zap.Int("attempt", attempt))
			return
		}
		if errors.Is(err, errPermanent) || attempt >= n.cfg.Attempts || ctx.Err() != nil {
			n.metrics.failed.Inc()
			log.Error("webhook not delivered, giving up", zap.Int("attempt", attempt), zap.Error(err))
			return
		}
		n.metrics.retried.Inc()
		d := min(max(wait, retryAfter), n.cfg.MaxBackoff)
		log.Warn("webhook failed, will retry", zap.Int("attempt", attempt), zap.Duration("backoff", d), zap.Error(err))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			n.metrics.failed.Inc()
			log.Warn("webhook retry abandoned at shutdown", zap.Int("attempt", attempt))
			return
		case <-t.C:
		}
		wait = min(wait*2, n.cfg.MaxBackoff)
	}
}

// post makes one attempt. It returns the server's Retry-After (0 if none)
// and an error that never contains the URL.
func (n *Notifier) post(ctx context.Context, rawURL string, body []byte) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		// The parse error quotes the URL: say only that it is malformed.
		return 0, fmt.Errorf("%w: malformed webhook URL", errPermanent)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "clade-gateway-notify")
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("notify: post webhook: %w", stripURL(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return 0, nil
	case c == http.StatusTooManyRequests || c == http.StatusRequestTimeout || c >= 500:
		return retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("notify: webhook answered %d", c)
	default:
		return 0, fmt.Errorf("%w: webhook answered %d", errPermanent, c)
	}
}

// stripURL drops the *url.Error wrappers, whose text includes the URL.
func stripURL(err error) error {
	for {
		var ue *url.Error
		if !errors.As(err, &ue) {
			return err
		}
		if ue.Timeout() {
			return errors.New("timeout")
		}
		if ue.Err == nil {
			return errors.New(ue.Op + " failed")
		}
		err = ue.Err
	}
}

// retryAfter reads a delay in seconds; HTTP dates are ignored (rare for
// webhooks, and the backoff still applies).
func retryAfter(v string) time.Duration {
	s, err := strconv.Atoi(v)
	if err != nil || s <= 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}
