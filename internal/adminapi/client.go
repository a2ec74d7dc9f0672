// Package adminapi reads Anthropic's usage and cost reports through the
// Admin API (GET /v1/organizations/usage_report/messages and
// /v1/organizations/cost_report). It only reads. It follows pagination,
// keeps each page within the API's bucket limits, and backs off on 429
// and 5xx answers, honouring retry-after. The admin key goes only into the
// x-api-key header: never into an error, a log line or a metric.
package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultBaseURL is the Admin API's address.
const DefaultBaseURL = "https://api.anthropic.com"

const (
	apiVersion = "2023-06-01"
	// fastBeta lets the usage report group by speed (fast mode).
	fastBeta = "fast-mode-2026-02-01"
	// maxBody bounds one page: 168 hourly buckets of a large organisation.
	maxBody = 64 << 20
)

// ErrUnauthorized reports a key the Admin API refused (401/403): not an
// admin key, revoked, or lacking the usage and cost scope.
var ErrUnauthorized = errors.New("adminapi: the admin key was refused")

// APIError is an answer other than 200.
type APIError struct {
	Status  int
	Type    string // the error envelope's type, e.g. rate_limit_error
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("adminapi: status %d %s: %s", e.Status, e.Type, e.Message)
}

// Options configure a Client.
type Options struct {
	BaseURL   string // default DefaultBaseURL
	Key       string // the admin key
	Transport http.RoundTripper
	// Retries bounds the retries of one page after 429/5xx or a network
	// error. Default 6.
	Retries int
	// Sleep waits between retries; default a timer bounded by ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client reads the reports.
type Client struct {
	base *url.URL
	key  string
	hc   *http.Client
	o    Options
}

// New returns a client.
func New(o Options) (*Client, error) {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(o.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("adminapi: base URL %q must be an http(s) URL", o.BaseURL)
	}
	if o.Key == "" {
		return nil, errors.New("adminapi: no admin key")
	}
	if o.Retries <= 0 {
		o.Retries = 6
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	return &Client{base: u, key: o.Key, hc: &http.Client{Transport: o.Transport, Timeout: 2 * time.Minute}, o: o}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// page is the envelope both reports share.
type page[T any] struct {
	Data []struct {
		StartingAt time.Time `json:"starting_at"`
		EndingAt   time.Time `json:"ending_at"`
		Results    []T       `json:"results"`
	} `json:"data"`
	HasMore  bool    `json:"has_more"`
	NextPage *string `json:"next_page"`
}

// fetchAll follows next_page from the first page of path with q.
func fetchAll[T any](ctx context.Context, c *Client, path string, q url.Values, beta string, each func(start time.Time, r T)) error {
	for {
		var p page[T]
		if err := c.get(ctx, path, q, beta, &p); err != nil {
			return err
		}
		for _, b := range p.Data {
			for _, r := range b.Results {
				each(b.StartingAt.UTC(), r)
			}
		}
		if !p.HasMore || p.NextPage == nil || *p.NextPage == "" {
			return nil
		}
		q.Set("page", *p.NextPage)
	}
}

// get fetches one page, retrying 429, 5xx and network failures.
func (c *Client) get(ctx context.Context, path string, q url.Values, beta string, v any) error {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = q.Encode()
	backoff := time.Second
	for try := 0; ; try++ {
		wait, err := c.once(ctx, u.String(), beta, v)
		if err == nil {
			return nil
		}
		if wait < 0 || try >= c.o.Retries {
			return fmt.Errorf("adminapi: GET %s: %w", path, err)
		}
		if wait == 0 {
			wait = backoff
			backoff = min(2*backoff, time.Minute)
		}
		if err := c.o.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("adminapi: GET %s: %w", path, err)
		}
	}
}

// once makes one request. wait is -1 when retrying cannot help, 0 to
// back off by default, or what retry-after asked.
func (c *Client) once(ctx context.Context, u, beta string, v any) (wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return -1, err
	}
	req.Header.Set("X-Api-Key", c.key)
	req.Header.Set("Anthropic-Version", apiVersion)
	req.Header.Set("User-Agent", "clade-gateway-reconcile")
	if beta != "" {
		req.Header.Set("Anthropic-Beta", beta)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return -1, ctx.Err()
		}
		return 0, c.scrub(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, c.scrub(err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			return -1, fmt.Errorf("decode report page: %w", err)
		}
		return 0, nil
	}
	ae := &APIError{Status: resp.StatusCode}
	var env struct {
		Error struct{ Type, Message string } `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil {
		ae.Type, ae.Message = env.Error.Type, c.redact(env.Error.Message)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return -1, fmt.Errorf("%w: %w", ErrUnauthorized, ae)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return retryAfter(resp.Header.Get("Retry-After")), ae
	}
	return -1, ae
}

// retryAfter reads a retry-after header (seconds, or an HTTP date); 0 when
// absent or unreadable. It is capped at five minutes.
func retryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.ParseFloat(h, 64); err == nil && s >= 0 {
		d = time.Duration(s * float64(time.Second))
	} else if t, err := http.ParseTime(h); err == nil {
		d = time.Until(t)
	}
	if d <= 0 {
		return time.Millisecond // asked to retry now: still not a busy loop
	}
	return min(d, 5*time.Minute)
}

// redact removes the key from text that came back from the network.
func (c *Client) redact(s string) string {
	if c.key == "" {
		return s
	}
	return strings.ReplaceAll(s, c.key, "<admin key>")
}

func (c *Client) scrub(err error) error {
	return errors.New(c.redact(err.Error()))
}
