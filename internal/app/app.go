// Package app wires clade-gateway together: configuration, logging, the
// budget store, the policy reloader, the proxy and the admin listener. The
// command's main only adds signals and the exit code, so tests run the
// real program in-process.
package app

import (
	"context"
	"fmt"
	"io"
)

// version is set at build time with -ldflags "-X github.com/clade-gateway/clade-gateway/internal/app.Version=...".
var Version = "dev"

const usage = `usage: clade-gateway [command]

commands:
  (none), serve                 serve the API and admin listeners (settings from CLADE_* variables)
  demo                          try the gateway without an Anthropic key: the sample policy against a
                                built-in FAKE Anthropic API, on loopback (run from the repository root)
  check-config [PATH]           validate a policy file or folder (default $CLADE_CONFIG) and check that the
                                secrets it names are set (not placeholders) here; exit 0/1
  check-config --policy-only [PATH]   validate the policy alone (review without the secrets)
  check-config --diff OLD NEW   print what changing the policy from OLD to NEW would do
  checklist [PATH]              check the policy (and, with CLADE_REDIS_URL or CLADE_DATA_DIR, the store)
                                against the access-control checklist; --format json for CI; exit 1 on any FAIL
  reconcile [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--format table|json]
                                compare the gateway's spend with Anthropic's usage and cost
                                reports; exit 0 within tolerance, 3 on findings, 1 on error
  new-token                     print a fresh service token and its sha256 for the policy
  hash-token                    read a token on stdin, print its sha256
  version, --version            print the version
  help, -h, --help              print this help
`

// Run is the whole program: main only adds signals and the exit code.
func Run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return serve(ctx, getenv, stdout, stderr)
	}
	switch args[0] {
	case "serve":
		if len(args) > 1 {
			return fmt.Errorf("serve takes no arguments (settings are CLADE_* variables)\n%s", usage)
		}
		return serve(ctx, getenv, stdout, stderr)
	case "demo":
		if len(args) > 1 {
			return fmt.Errorf("demo takes no arguments\n%s", usage)
		}
		return demo(ctx, getenv, stdout, stderr)
	case "check-config":
		return checkConfig(args[1:], getenv, stdout)
	case "checklist":
		return runChecklist(ctx, args[1:], getenv, stdout)
	case "reconcile":
		return reconcileCmd(ctx, args[1:], getenv, stdout)
	case "new-token":
		return newToken(stdout)
	case "hash-token":
		return hashToken(stdin, stdout)
	case "version", "--version":
		_, err := fmt.Fprintln(stdout, "clade-gateway", Version)
		return err
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, usage)
		return err
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}
