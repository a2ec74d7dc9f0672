package proxy

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"

	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// Log reasons of the four authentication failures. The metric label stays
// reasonUnauthn for all of them (one bounded label value); the log line
// and the message tell them apart.
const (
	authMissing      = "missing_credentials"
	authUnknown      = "unknown_token"
	authAnthropicKey = "anthropic_key_as_token"
	authConflict     = "conflicting_credentials"
)

// Where a credential came from, as a person would name it, and the SDK and
// Claude Code variable that puts it there.
const (
	fromAPIKey = "x-api-key"
	fromBearer = "Authorization: Bearer"
	fromOther  = "Authorization"
)

var credentialVar = map[string]string{fromAPIKey: "ANTHROPIC_API_KEY", fromBearer: "ANTHROPIC_AUTH_TOKEN", fromOther: "ANTHROPIC_AUTH_TOKEN"}

// maxCredentials bounds the token lookups one request can cause.
const maxCredentials = 4

type presented struct {
	from  string
	value string
	svc   *policy.Service // nil: not a service token of this gateway
}

// authenticate finds the service a request's credentials name, and the
// sha256 of the token that named it.
//
// Clients send the token in x-api-key or as Authorization: Bearer. When
// they send several values, exactly one of which is a service token (Claude
// Code with ANTHROPIC_AUTH_TOKEN=<service token> and a stray
// ANTHROPIC_API_KEY sends both headers), the service token wins: the other
// values are never forwarded (the proxy replaces both headers with the
// workspace key) and refusing would leave the developer behind a retry
// loop. Two values that are tokens of different services are refused: which
// service pays must not depend on header order.
func authenticate(hd http.Header, p *policy.Policy) (*policy.Service, [sha256.Size]byte, error) {
	keys, auths := hd.Values("X-Api-Key"), hd.Values("Authorization")
	// The common case: one header, one value, no allocation.
	if len(keys) == 1 && len(auths) == 0 {
		if tok := strings.TrimSpace(keys[0]); tok != "" {
			d := sha256.Sum256([]byte(tok))
			if svc, ok := p.ServiceByDigest(d); ok {
				return svc, d, nil
			}
			return nil, d, authFailure([]presented{{from: fromAPIKey, value: tok}})
		}
	}
	var creds []presented
	add := func(from, v string) {
		v = strings.TrimSpace(v)
		if v == "" {
			return
		}
		for _, c := range creds {
			if c.value == v {
				return
			}
		}
		creds = append(creds, presented{from: from, value: v})
	}
	for _, v := range keys {
		add(fromAPIKey, v)
	}
	for _, v := range auths {
		if b, ok := cutBearer(v); ok {
			add(fromBearer, b)
		} else {
			add(fromOther, v)
		}
	}
	var none [sha256.Size]byte
	if len(creds) > maxCredentials {
		return nil, none, authFailure(creds)
	}
	var found *policy.Service
	var digest [sha256.Size]byte
	for i := range creds {
		if creds[i].from == fromOther {
			continue
		}
		d := sha256.Sum256([]byte(creds[i].value))
		if svc, ok := p.ServiceByDigest(d); ok {
			creds[i].svc = svc
			if found != nil && found != svc {
				return nil, none, authFailure(creds)
			}
			found, digest = svc, d
		}
	}
	if found != nil {
		return found, digest, nil
	}
	return nil, none, authFailure(creds)
}

func cutBearer(v string) (string, bool) {
	if len(v) > 7 && strings.EqualFold(v[:7], "Bearer ") {
		return v[7:], true
	}
	return "", false
}

// isAnthropicKey recognises Anthropic credentials (API keys sk-ant-api…,
// OAuth tokens sk-ant-oat…) by their public prefix.
func isAnthropicKey(v string) bool { return strings.HasPrefix(v, "sk-ant-") }

// authFailure explains why creds do not authenticate: never echoing a
// value, only where each came from and what kind of thing it looks like.
func authFailure(creds []presented) *apiError {
	e := &apiError{Status: http.StatusUnauthorized, Type: "authentication_error", Reason: reasonUnauthn, NoRetry: true}
	switch {
	case len(creds) == 0:
		e.LogReason = authMissing
		e.Msg = "no credentials: send your service token in x-api-key or as Authorization: Bearer " +
			"(ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN for the SDKs and Claude Code)"
	case len(creds) == 1 && isAnthropicKey(creds[0].value):
		e.LogReason = authAnthropicKey
		e.Msg = fmt.Sprintf("%s holds an Anthropic key (sk-ant-…): send your service token, not an Anthropic key. "+
			"The gateway adds the workspace key itself; set %s to the service token (clade_sk_…) your platform team gave you",
			creds[0].from, credentialVar[creds[0].from])
	case len(creds) == 1:
		e.LogReason = authUnknown
		e.Msg = fmt.Sprintf("the token in %s is not a service token of this gateway (unknown or revoked); "+
			"check the service token (clade_sk_…) you were given", creds[0].from)
	default:
		e.LogReason = authConflict
		e.Msg = conflictMessage(creds)
	}
	return e
}

func conflictMessage(creds []presented) string {
	if len(creds) > maxCredentials {
		return fmt.Sprintf("%d different credentials in one request; send only your service token, in x-api-key or as Authorization: Bearer", len(creds))
	}
	var parts []string
	tokens := 0
	for _, c := range creds {
		what := "not a token of this gateway"
		switch {
		case c.svc != nil:
			what = "a service token"
			tokens++
		case isAnthropicKey(c.value):
			what = "an Anthropic key, sk-ant-…"
		case c.from == fromOther:
			what = "not a Bearer token"
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", c.from, what))
	}
	msg := "conflicting credentials: " + strings.Join(parts, " and ")
	if tokens > 1 {
		return msg + " are service tokens of different services; send only one: unset ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN"
	}
	// Nothing here is a service token: say which variable feeds which header.
	var unset []string
	for _, c := range creds {
		if v := credentialVar[c.from]; !contains(unset, v) {
			unset = append(unset, v)
		}
	}
	if len(unset) == 1 {
		return msg + "; send only your service token, once, in " + unset[0]
	}
	if len(creds) == 2 && isAnthropicKey(creds[0].value) != isAnthropicKey(creds[1].value) {
		key, tok := creds[0], creds[1]
		if isAnthropicKey(tok.value) {
			key, tok = tok, key
		}
		return msg + fmt.Sprintf("; unset %s (it sends the Anthropic key) and set %s to your service token",
			credentialVar[key.from], credentialVar[tok.from])
	}
	return msg + "; send only your service token: set one of " + strings.Join(unset, " or ") + " to it and unset the other"
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
