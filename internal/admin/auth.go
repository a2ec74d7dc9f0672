package admin

import (
	"context"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Reasons an admin authentication fails (label values of
// clade_gateway_admin_auth_failures_total).
const (
	authMissing  = "missing"   // no Bearer Authorization header
	authInvalid  = "invalid"   // a token that is not one of admin.tokens
	authNoPolicy = "no_policy" // no policy loaded yet
)

func newAuthFailures(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clade_gateway_admin_auth_failures_total",
		Help: "Admin API requests refused for lack of a valid admin token, by reason (missing, invalid, no_policy).",
	}, []string{"reason"})
	reg.MustRegister(c)
	for _, r := range []string{authMissing, authInvalid, authNoPolicy} {
		c.WithLabelValues(r)
	}
	return c
}

// authenticate returns the name of the admin token a request carries, or
// why it has none.
func (s *server) authenticate(r *http.Request) (name, reason string) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	tok = strings.TrimSpace(tok)
	if !ok || tok == "" {
		return "", authMissing
	}
	p := s.o.Policy()
	if p == nil {
		return "", authNoPolicy
	}
	name, ok = p.AdminTokenName(tok)
	if !ok {
		return "", authInvalid
	}
	return name, ""
}

// authFailed counts and logs a refused admin request; the token itself
// is never logged.
func (s *server) authFailed(r *http.Request, reason string) {
	s.authFail.WithLabelValues(reason).Inc()
	s.log.Warn("admin authentication failed", zap.String("audit", "admin_auth_failed"), zap.String("reason", reason),
		zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.String("remote", r.RemoteAddr))
}

type tokenKey struct{}

func withTokenName(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, tokenKey{}, name)
}

func tokenName(ctx context.Context) string {
	n, _ := ctx.Value(tokenKey{}).(string)
	return n
}
