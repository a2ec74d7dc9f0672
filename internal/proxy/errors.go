package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

// apiError is an error the gateway itself answers with, in Anthropic's
// envelope. Msg is what the client sees; Err (if any) only goes to the log.
type apiError struct {
	Status  int
	Type    string // Anthropic error.type
	Msg     string
	Code    string // error.details.error_code, optional
	Reason  string // clade_gateway_rejected_total reason label
	Header  http.Header
	Err     error
	NoRetry bool // x-should-retry: false
}

func (e *apiError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Type, e.Msg, e.Err)
	}
	return e.Type + ": " + e.Msg
}

func (e *apiError) Unwrap() error { return e.Err }

// Rejection reasons (label values of clade_gateway_rejected_total).
const (
	reasonBudget       = "budget_exceeded"
	reasonRateLimited  = "rate_limited"
	reasonStore        = "store_unavailable"
	reasonUnauthn      = "unauthenticated"
	reasonModel        = "model_not_allowed"
	reasonUnknownModel = "unknown_model"
	reasonPath         = "path_refused"
	reasonBadRequest   = "bad_request"
	reasonTooLarge     = "too_large"
	reasonUpstream     = "upstream_error"
)

func errUnauthenticated() *apiError {
	// One message for missing, malformed and unknown tokens of any length,
	// so the answer tells an attacker nothing about what exists.
	return &apiError{Status: http.StatusUnauthorized, Type: "authentication_error",
		Msg: "invalid x-api-key", Reason: reasonUnauthn}
}

func errPathRefused(msg string) *apiError {
	return &apiError{Status: http.StatusForbidden, Type: "permission_error", Msg: msg, Reason: reasonPath, NoRetry: true}
}

func errBadRequest(msg string, err error) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Msg: msg, Reason: reasonBadRequest, Err: err}
}

// statusFor maps every error the request path can produce to what the
// client is told. It is the one place that decides status codes.
func statusFor(err error, now time.Time) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var ex *budget.ExceededError
	if errors.As(err, &ex) {
		return exceeded(ex, now)
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Type: "request_too_large",
			Msg: fmt.Sprintf("request body exceeds the gateway's limit of %d bytes", mbe.Limit), Reason: reasonTooLarge, Err: err, NoRetry: true}
	case errors.Is(err, budget.ErrStoreReset):
		return storeDown(err, "the budget store lost its data; an operator must re-initialise it before requests are admitted")
	case errors.Is(err, budget.ErrUnavailable):
		return storeDown(err, "the budget store is unavailable; try again shortly")
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusGatewayTimeout, Type: "timeout_error", Msg: "upstream timed out", Reason: reasonUpstream, Err: err}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &apiError{Status: http.StatusGatewayTimeout, Type: "timeout_error", Msg: "upstream timed out", Reason: reasonUpstream, Err: err}
	}
	return &apiError{Status: http.StatusBadGateway, Type: "api_error", Msg: "upstream unreachable", Reason: reasonUpstream, Err: err}
}

func storeDown(err error, msg string) *apiError {
	h := http.Header{}
	h.Set("Retry-After", "5")
	return &apiError{Status: http.StatusServiceUnavailable, Type: "api_error", Msg: msg, Reason: reasonStore, Header: h, Err: err}
}

func exceeded(ex *budget.ExceededError, now time.Time) *apiError {
	b := ex.Budget
	when := "it never resets (total budget)"
	if !ex.ResetsAt.IsZero() {
		when = "it resets at " + ex.ResetsAt.UTC().Format(time.RFC3339)
	}
	msg := fmt.Sprintf("%s %q has reached its %s budget %q of $%s (spent $%s, reserved $%s); %s.",
		titleScope(b.Scope), b.Name, b.Period, b.ID, b.Limit, ex.Spent, ex.Reserved, when)
	if b.Scope == budget.ScopePrincipal {
		if m := principalExceeded(ex); m != "" {
			msg = m
		}
	}
	h := http.Header{}
	// The official SDKs check x-should-retry before the status code, so a
	// budget refusal surfaces at once instead of after three attempts.
	h.Set("x-should-retry", "false")
	return &apiError{Status: http.StatusPaymentRequired, Type: "billing_error", Msg: msg,
		Code: "budget_exceeded", Reason: reasonBudget, Header: h, NoRetry: true}
}

func rateLimited(retryAfter time.Duration) *apiError {
	secs := int(retryAfter.Seconds() + 0.999)
	if secs < 1 {
		secs = 1
	}
	h := http.Header{}
	h.Set("Retry-After", strconv.Itoa(secs))
	return &apiError{Status: http.StatusTooManyRequests, Type: "rate_limit_error",
		Msg: "this service's request rate limit at the gateway was exceeded", Reason: reasonRateLimited, Header: h}
}

func titleScope(s budget.Scope) string {
	switch s {
	case budget.ScopeService:
		return "Service"
	case budget.ScopeTeam:
		return "Team"
	case budget.ScopeWorkspace:
		return "Workspace"
	}
	return string(s)
}

func errModelNotAllowed(service, model string) *apiError {
	return &apiError{Status: http.StatusForbidden, Type: "permission_error",
		Msg: fmt.Sprintf("service %q may not use model %q (not in its models allowlist)", service, safePath(model)), Reason: reasonModel, NoRetry: true}
}

func errUnknownModel(model string, err error) *apiError {
	return &apiError{Status: http.StatusForbidden, Type: "permission_error",
		Msg:    fmt.Sprintf("model %q has no price at the gateway, so its spend cannot be capped; ask the platform team to add it under pricing.models", safePath(model)),
		Reason: reasonUnknownModel, Err: err, NoRetry: true}
}

func codeLabel(status int) string { return strconv.Itoa(status) }
