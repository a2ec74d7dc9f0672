package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
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
	NoRetry bool           // x-should-retry: false
	Budget  *budgetDetails // error.details of a budget refusal

	// LogReason, when set, is the log line's reason: finer than the
	// metric label (the four authentication failures share one label).
	LogReason string
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
	reasonUnknownTool  = "unknown_tool"
	reasonUnbounded    = "unbounded_cost"
)

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
	var br *budgetRefusal
	if errors.As(err, &br) {
		return exceeded(br.ex, br, now)
	}
	var ex *budget.ExceededError
	if errors.As(err, &ex) {
		return exceeded(ex, nil, now)
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Type: "request_too_large",
			Msg: fmt.Sprintf("request body exceeds the gateway's limit of %d bytes", mbe.Limit), Reason: reasonTooLarge, Err: err, NoRetry: true}
	case errors.Is(err, errBodyStalled):
		return &apiError{Status: http.StatusRequestTimeout, Type: "timeout_error",
			Msg: "the request body did not arrive within the gateway's read deadline", Reason: reasonBadRequest, Err: err}
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

// budgetRefusal is a budget refusal of a request whose needs are known.
type budgetRefusal struct {
	ex        *budget.ExceededError
	needed    money.Nanos // the request's worst case
	maxTokens int64       // its max_tokens; 0 for a batch
	fits      int64       // the largest max_tokens that fits; 0 if none
	// smallest is the worst case of the smallest useful version of the
	// request (max_tokens at min_max_tokens): below it the cap is reached.
	smallest money.Nanos
}

func (e *budgetRefusal) Error() string {
	return fmt.Sprintf("%v (needed %s, max_tokens %d)", e.ex, e.needed, e.maxTokens)
}

func (e *budgetRefusal) Unwrap() error { return e.ex }

// exceeded is the refusal of a request over budget. It says "has reached"
// only when what is left is below the smallest useful request (br, when
// known) or nothing at all; otherwise it says what is left, what the
// request needed and what max_tokens would fit.
func exceeded(ex *budget.ExceededError, br *budgetRefusal, now time.Time) *apiError {
	b := ex.Budget
	when := "it never resets (total budget)"
	if !ex.ResetsAt.IsZero() {
		when = "it resets at " + ex.ResetsAt.UTC().Format(time.RFC3339)
	}
	left := max(b.Limit-ex.Spent-ex.Reserved, 0)
	var msg string
	reached := false
	switch {
	case br == nil && left == 0:
		reached = true
		msg = fmt.Sprintf("%s %q has reached its %s budget %q of $%s (spent $%s, reserved $%s); %s.",
			titleScope(b.Scope), b.Name, b.Period, b.ID, b.Limit, ex.Spent, ex.Reserved, when)
	case br == nil:
		msg = fmt.Sprintf("%s %q %s budget %q of $%s has $%s left (spent $%s, reserved by requests in flight $%s), less than this request needs at worst; %s.",
			titleScope(b.Scope), b.Name, b.Period, b.ID, b.Limit, left, ex.Spent, ex.Reserved, when)
	case left < br.smallest:
		reached = true
		msg = fmt.Sprintf("%s %q has reached its %s budget %q of $%s (spent $%s, reserved $%s): the $%s left is less than the smallest useful request needs ($%s); %s.",
			titleScope(b.Scope), b.Name, b.Period, b.ID, b.Limit, ex.Spent, ex.Reserved, left, br.smallest, when)
	default:
		fit := "no max_tokens fits"
		if br.fits > 0 {
			fit = fmt.Sprintf("max_tokens up to %d would fit", br.fits)
		}
		msg = fmt.Sprintf("%s %q %s budget %q of $%s has $%s left (spent $%s, reserved by requests in flight $%s), but this request needs up to $%s (its prompt and max_tokens %d at worst); %s; %s.",
			titleScope(b.Scope), b.Name, b.Period, b.ID, b.Limit, left, ex.Spent, ex.Reserved, br.needed, br.maxTokens, fit, when)
	}
	// A principal's budget is named for people: "developer alice@… has
	// reached the daily budget of $20 for service claude-code".
	if b.Scope == budget.ScopePrincipal {
		if m := principalExceeded(ex, br, left, reached); m != "" {
			msg = m
		}
	}
	var details *budgetDetails
	if br != nil {
		details = &budgetDetails{NeededUSD: json.Number(br.needed.String()), RemainingUSD: json.Number(left.String())}
		if br.maxTokens > 0 {
			details.MaxTokensThatFit = &br.fits
		}
	}
	h := http.Header{}
	// The official SDKs check x-should-retry before the status code, so a
	// budget refusal surfaces at once instead of after three attempts.
	h.Set("x-should-retry", "false")
	return &apiError{Status: http.StatusPaymentRequired, Type: "billing_error", Msg: msg,
		Code: "budget_exceeded", Reason: reasonBudget, Header: h, NoRetry: true, Budget: details}
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

// errModelNotAllowed is a 400 invalid_request_error, not a 403: clients
// show a 403 as an authentication or permission problem (Claude Code says
// "Failed to authenticate"), while a 400 is shown with its message, which
// says what to change: the model the request asks for.
func errModelNotAllowed(service, model string, allowed []string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error",
		Msg: fmt.Sprintf("model %q is not allowed for service %q at this gateway (not in its models allowlist: %s); ask for one of those models (with Claude Code: ANTHROPIC_MODEL, and ANTHROPIC_SMALL_FAST_MODEL for its background calls)",
			safePath(model), service, strings.Join(allowed, ", ")), Reason: reasonModel, NoRetry: true}
}

func errUnknownModel(model string, err error) *apiError {
	return &apiError{Status: http.StatusForbidden, Type: "permission_error",
		Msg:    fmt.Sprintf("model %q has no price at the gateway, so its spend cannot be capped; ask the platform team to add it under pricing.models", safePath(model)),
		Reason: reasonUnknownModel, Err: err, NoRetry: true}
}

// errUnknownTool refuses a tool type whose server-side cost the gateway
// cannot bound (policy unknown_tools: reject).
func errUnknownTool(quotedType string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Reason: reasonUnknownTool, NoRetry: true,
		Msg: fmt.Sprintf("tool type %s is not known to the gateway, so what it costs on the server side cannot be bounded; ask the platform team to allow it (unknown_tools: allow)", quotedType)}
}

// errUnbounded refuses a request whose cost the gateway cannot bound.
func errUnbounded(msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Reason: reasonUnbounded, NoRetry: true, Msg: msg}
}

func codeLabel(status int) string { return strconv.Itoa(status) }

// errNotOwned answers for another service's object (or none) as if it did
// not exist, so ids of other services' objects reveal nothing.
func errNotOwned(kind string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: "not_found_error",
		Msg: "no " + kind + " with that id was created by this service through the gateway", Reason: reasonPath}
}

// errOwnerNotRecorded fails an upload whose owner the store could not
// record: nobody could use or delete the object through the gateway.
func errOwnerNotRecorded(err error) *apiError {
	h := http.Header{}
	h.Set("Retry-After", "5")
	return &apiError{Status: http.StatusServiceUnavailable, Type: "api_error",
		Msg: "the gateway could not record who owns the uploaded object; try again shortly", Reason: reasonStore, Header: h, Err: err}
}
