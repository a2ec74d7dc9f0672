package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/jsonscan"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
	"github.com/clade-gateway/clade-gateway/internal/spend"
)

// Claude Code's request identifiers (claude-code 2.1.337, recorded in
// internal/e2e/testdata/claude-code): every request carries the session in
// a header and in metadata.user_id; a subagent's requests add its agent ID.
const (
	hdrClaudeCodeSession = "X-Claude-Code-Session-Id"
	hdrClaudeCodeAgent   = "X-Claude-Code-Agent-Id"
)

// principalValue is one principal a request was counted under.
type principalValue struct {
	from, stored string
}

// principals resolves the service's principal levels for this request and
// keeps their budgets on c, to be reserved with the service's own. A
// missing or unusable value is refused here, before any hold.
func (h *Handler) principals(r *http.Request, c *call) error {
	levels := c.svc.Principals
	if len(levels) == 0 {
		return nil
	}
	ids := requestIDs{body: c.body, header: r.Header}
	for _, pr := range levels {
		raw, err := ids.value(pr)
		if err != nil {
			return err
		}
		if raw == "" {
			if pr.WhenMissing == policy.MissingAllow {
				continue
			}
			return errBadRequest(fmt.Sprintf("service %q caps spend per %s, and this request has no %s",
				c.svc.Name, principalNoun(pr.From), sourceField(pr.From)), nil)
		}
		if len(raw) > policy.MaxPrincipalValue {
			return errBadRequest(fmt.Sprintf("%s is %d bytes long; the gateway accepts at most %d",
				sourceField(pr.From), len(raw), policy.MaxPrincipalValue), nil)
		}
		if !printable(raw) {
			return errBadRequest(fmt.Sprintf("%s must be valid UTF-8 without control characters", sourceField(pr.From)), nil)
		}
		stored := pr.Stored(raw)
		c.principals = append(c.principals, principalValue{from: pr.From, stored: stored})
		c.principalBudgets = append(c.principalBudgets, pr.BudgetsFor(stored)...)
	}
	return nil
}

// requestIDs reads principal values from one request, parsing
// metadata.user_id at most once.
type requestIDs struct {
	body   []byte
	header http.Header

	parsed   bool
	userID   string
	cc       claudeCodeIDs
	ccParsed bool
}

func (ids *requestIDs) metadataUserID() (string, error) {
	if !ids.parsed {
		ids.parsed = true
		v, err := metadataUserID(ids.body)
		if err != nil {
			return "", err
		}
		ids.userID = v
	}
	return ids.userID, nil
}

func (ids *requestIDs) claudeCode() (claudeCodeIDs, error) {
	if !ids.ccParsed {
		v, err := ids.metadataUserID()
		if err != nil {
			return claudeCodeIDs{}, err
		}
		ids.ccParsed, ids.cc = true, parseClaudeCodeUserID(v)
	}
	return ids.cc, nil
}

// value returns the raw value of pr's source, "" when the request has none.
func (ids *requestIDs) value(pr *policy.Principal) (string, error) {
	switch pr.From {
	case policy.FromMetadataUserID:
		return ids.metadataUserID()
	case policy.FromClaudeCodeUser:
		cc, err := ids.claudeCode()
		return cc.user, err
	case policy.FromClaudeCodeSession:
		if v, err := oneHeader(ids.header, hdrClaudeCodeSession); v != "" || err != nil {
			return v, err
		}
		cc, err := ids.claudeCode()
		return cc.session, err
	case policy.FromClaudeCodeAgent:
		return oneHeader(ids.header, hdrClaudeCodeAgent)
	}
	return oneHeader(ids.header, pr.Header())
}

// oneHeader returns a header's value; several that disagree are refused,
// since which one counted would depend on their order.
func oneHeader(hd http.Header, name string) (string, error) {
	vs := hd.Values(name)
	if len(vs) == 0 {
		return "", nil
	}
	v := strings.TrimSpace(vs[0])
	for _, o := range vs[1:] {
		if strings.TrimSpace(o) != v {
			return "", errBadRequest(fmt.Sprintf("the %s header is repeated with different values", strings.ToLower(name)), nil)
		}
	}
	return v, nil
}

// metadataUserID returns the body's metadata.user_id ("" when absent or
// null). The body has been validated; encoding/json's rules apply: the
// last of repeated keys wins and keys match case-insensitively.
func metadataUserID(body []byte) (string, error) {
	var meta []byte
	var v jsonscan.Validator
	v.Members(body, func(key, val []byte) {
		if keyIn(key, []string{"metadata"}) {
			meta = val
		}
	})
	if meta == nil {
		return "", nil
	}
	var m struct {
		UserID *string `json:"user_id"`
	}
	if err := json.Unmarshal(meta, &m); err != nil {
		return "", errBadRequest("metadata.user_id must be a string: "+jsonErrText(err), err)
	}
	if m.UserID == nil {
		return "", nil
	}
	return *m.UserID, nil
}

// claudeCodeIDs are what Claude Code's metadata.user_id says.
type claudeCodeIDs struct{ user, session string }

// parseClaudeCodeUserID reads both forms Claude Code has sent:
//
//	{"device_id":"<sha256 hex>","account_uuid":"<uuid or empty>","session_id":"<uuid>"}
//	user_<device hash>_account_<uuid or empty>_session_<uuid>
//
// The JSON form also carries whatever CLAUDE_CODE_EXTRA_METADATA adds
// (Claude Code merges it in, its own fields last). The developer is the
// "user" such a variable names, else the signed-in account, else the
// device: with an API key, account_uuid is empty.
func parseClaudeCodeUserID(v string) claudeCodeIDs {
	if strings.HasPrefix(v, "{") {
		var m struct {
			User        any    `json:"user"`
			DeviceID    string `json:"device_id"`
			AccountUUID string `json:"account_uuid"`
			SessionID   string `json:"session_id"`
		}
		if json.Unmarshal([]byte(v), &m) != nil {
			return claudeCodeIDs{}
		}
		user, _ := m.User.(string)
		return claudeCodeIDs{user: firstNonEmpty(user, firstNonEmpty(m.AccountUUID, m.DeviceID)), session: m.SessionID}
	}
	rest, ok := strings.CutPrefix(v, "user_")
	if !ok {
		return claudeCodeIDs{}
	}
	device, rest, ok1 := strings.Cut(rest, "_account_")
	account, session, ok2 := strings.Cut(rest, "_session_")
	if !ok1 || !ok2 {
		return claudeCodeIDs{}
	}
	return claudeCodeIDs{user: firstNonEmpty(account, device), session: session}
}

// printable reports whether s is valid UTF-8 without control characters:
// values become store keys (newline-joined in holds) and log fields.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// principalNoun names what a source's values are, for people.
func principalNoun(from string) string {
	switch from {
	case policy.FromClaudeCodeUser:
		return "developer"
	case policy.FromClaudeCodeSession:
		return "session"
	case policy.FromClaudeCodeAgent:
		return "agent"
	case policy.FromMetadataUserID:
		return "user"
	}
	return strings.TrimPrefix(from, policy.FromHeaderPrefix)
}

// sourceField names where a source's value is read from, for a client.
func sourceField(from string) string {
	switch from {
	case policy.FromMetadataUserID:
		return "metadata.user_id"
	case policy.FromClaudeCodeUser:
		return "metadata.user_id in Claude Code's format"
	case policy.FromClaudeCodeSession:
		return "x-claude-code-session-id header (or session in metadata.user_id)"
	case policy.FromClaudeCodeAgent:
		return "x-claude-code-agent-id header"
	}
	return strings.TrimPrefix(from, policy.FromHeaderPrefix) + " header"
}

// principalExceeded is the refusal message for a principal's budget:
// `developer alice@example.com has reached the daily budget of $20 for
// service claude-code (spent $19.9, reserved $0.3); resets at ...`.
func principalExceeded(ex *budget.ExceededError, br *budgetRefusal, left money.Nanos, reached bool) string {
	b := ex.Budget
	service, from, value, ok := policy.SplitPrincipalName(b.Name)
	if !ok {
		return ""
	}
	which := string(b.Period)
	if b.ID != string(b.Period) {
		which += " " + strconv.Quote(b.ID)
	}
	when := "it never resets (total budget)"
	if !ex.ResetsAt.IsZero() {
		when = "resets at " + ex.ResetsAt.UTC().Format(time.RFC3339)
	}
	who := principalNoun(from) + " " + value
	switch {
	case reached && br != nil && left > 0:
		return fmt.Sprintf("%s has reached the %s budget of $%s for service %s (spent $%s, reserved $%s): the $%s left is less than the smallest useful request needs ($%s); %s.",
			who, which, b.Limit, service, ex.Spent, ex.Reserved, left, br.smallest, when)
	case reached:
		return fmt.Sprintf("%s has reached the %s budget of $%s for service %s (spent $%s, reserved $%s); %s.",
			who, which, b.Limit, service, ex.Spent, ex.Reserved, when)
	case br == nil:
		return fmt.Sprintf("%s has $%s left of the %s budget of $%s for service %s (spent $%s, reserved by requests in flight $%s), less than this request needs at worst; %s.",
			who, left, which, b.Limit, service, ex.Spent, ex.Reserved, when)
	}
	fit := "no max_tokens fits"
	if br.fits > 0 {
		fit = fmt.Sprintf("max_tokens up to %d would fit", br.fits)
	}
	return fmt.Sprintf("%s has $%s left of the %s budget of $%s for service %s (spent $%s, reserved by requests in flight $%s), but this request needs up to $%s (its prompt and max_tokens %d at worst); %s; %s.",
		who, left, which, b.Limit, service, ex.Spent, ex.Reserved, br.needed, br.maxTokens, fit, when)
}

// spendPrincipals is what the spend log records of c's principals.
func (c *call) spendPrincipals() []spend.Principal {
	if len(c.principals) == 0 {
		return nil
	}
	out := make([]spend.Principal, len(c.principals))
	for i, p := range c.principals {
		out[i] = spend.Principal{From: p.from, Value: p.stored}
	}
	return out
}
