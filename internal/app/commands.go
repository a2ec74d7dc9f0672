package app

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// tokenPrefix makes service tokens recognisable to people and to secret
// scanners, and different from Anthropic's sk-ant- keys at a glance.
const tokenPrefix = "clade_sk_"

func newToken(out io.Writer) error {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("new-token: %w", err)
	}
	tok := tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(tok))
	_, err := fmt.Fprintf(out, "token:  %s\nsha256: %s\n\nGive the token to the service (ANTHROPIC_API_KEY); put only the sha256 in the policy:\n  tokens:\n    - sha256: \"%s\"\n",
		tok, hex.EncodeToString(sum[:]), hex.EncodeToString(sum[:]))
	return err
}

func hashToken(in io.Reader, out io.Writer) error {
	line, err := bufio.NewReader(io.LimitReader(in, 1<<16)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("hash-token: %w", err)
	}
	tok := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if tok == "" {
		return errors.New("hash-token: no token on stdin")
	}
	sum := sha256.Sum256([]byte(tok))
	_, err = fmt.Fprintln(out, hex.EncodeToString(sum[:]))
	return err
}

func checkConfig(args []string, getenv func(string) string, out io.Writer) error {
	opts := policy.LoadOptions{Getenv: getenv, Now: time.Now}
	if len(args) > 0 && args[0] == "--diff" {
		if len(args) != 3 {
			return errors.New("check-config --diff takes two paths: OLD NEW")
		}
		oldP, err := policy.Load(args[1], opts)
		if err != nil {
			return fmt.Errorf("%s is invalid:\n%w", args[1], err)
		}
		newP, err := policy.Load(args[2], opts)
		if err != nil {
			return fmt.Errorf("%s is invalid:\n%w", args[2], err)
		}
		lines := policy.Diff(oldP, newP)
		if len(lines) == 0 {
			_, err = fmt.Fprintln(out, "no changes")
			return err
		}
		for _, l := range lines {
			if _, err := fmt.Fprintln(out, l); err != nil {
				return err
			}
		}
		return nil
	}
	policyOnly := len(args) > 0 && args[0] == "--policy-only"
	if policyOnly {
		args = args[1:]
	}
	path := getenv("CLADE_CONFIG")
	if path == "" {
		path = "clade.yaml"
	}
	if len(args) > 0 {
		path = args[0]
	}
	if len(args) > 1 {
		return errors.New("check-config takes at most one path")
	}
	p, err := policy.Load(path, opts)
	if err != nil {
		return fmt.Errorf("%s is invalid:\n%w", path, err)
	}
	if _, err = fmt.Fprintf(out, "%s is valid: %d workspaces, %d teams, %d services, %d budgets\n",
		path, len(p.Workspaces), len(p.Teams), len(p.Services), len(p.AllBudgets())); err != nil {
		return err
	}
	if err := reconcileSummary(out, p); err != nil {
		return err
	}
	if policyOnly {
		return nil
	}
	return checkSecrets(path, opts, out)
}

// checkSecrets reads every secret the policy names (workspace keys,
// webhook URLs) as serve would, so "valid" also means the gateway would
// start in this environment: no variable unset or holding a placeholder.
func checkSecrets(path string, opts policy.LoadOptions, out io.Writer) error {
	opts.ResolveSecrets = true
	p, err := policy.Load(path, opts)
	if err != nil {
		return fmt.Errorf("the secrets %s names are not ready in this environment (check-config --policy-only skips this check):\n%w", path, err)
	}
	var vars []string
	for _, ws := range p.Workspaces {
		for _, k := range ws.Keys {
			if k.Env != "" {
				vars = append(vars, k.Env)
			}
		}
	}
	slices.Sort(vars)
	_, err = fmt.Fprintf(out, "its secrets are set in this environment (workspace key variables: %s)\n", strings.Join(slices.Compact(vars), ", "))
	return err
}
