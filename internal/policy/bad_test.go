package policy

import (
	"errors"
	"strings"
	"testing"
)

// TestBadFixtures loads one fixture per kind of mistake and compares the
// whole error text: every problem, in order, with file, line and key path.
// Each want line is prefixed with the fixture's path.
func TestBadFixtures(t *testing.T) {
	tests := []struct {
		fixture string
		want    []string
	}{
		{"bad/budget-alerts.yaml", []string{
			":4: teams.search.budgets[0].alert_at[0]: must be a fraction of the limit: more than 0 and at most 1",
			":4: teams.search.budgets[0].alert_at[1]: must be a fraction of the limit: more than 0 and at most 1",
			":5: teams.search.budgets[1].alert_at[1]: must be larger than the one before (ascending, no repeats)",
			":6: teams.search.budgets[2].alert_at[1]: must be larger than the one before (ascending, no repeats)",
			":7: teams.search.budgets[3].alert_at: must be a list",
		}},
		{"bad/budget-ids.yaml", []string{
			":5: teams.search.budgets[1]: budget id \"daily\" (the default: the period) also used at line 4: give one of them an explicit id",
			":7: teams.search.budgets[3].id: budget id \"cap\" also used at line 6: give one of them an explicit id",
			":8: teams.search.budgets[4].id: budget id \"Daily Cap\" must match [a-z0-9_-]{1,63}",
			":10: teams.search.budgets[6]: budget id \"weekly\" (the default: the period) also used at line 9: give one of them an explicit id",
		}},
		{"bad/budget-limit.yaml", []string{
			":6: workspaces.production.budgets[0].limit_usd: must be more than 0",
			":7: workspaces.production.budgets[1].limit_usd: must be more than 0",
			":8: workspaces.production.budgets[2].limit_usd: has more than 9 fraction digits (amounts are exact to the nano-dollar)",
			":9: workspaces.production.budgets[3].limit_usd: must be a number of US dollars",
			":10: workspaces.production.budgets[4].limit_usd: required key is missing",
			":11: workspaces.production.budgets[5].limit_usd: is out of range (at most 9223372036 USD)",
		}},
		{"bad/budget-period.yaml", []string{
			":6: workspaces.production.budgets[0].period: must be daily, weekly, monthly or total, not \"yearly\"",
			":7: workspaces.production.budgets[1].period: required key is missing",
		}},
		{"bad/duplicate-key.yaml", []string{
			":11: services.rec.workspace: key repeated (first at line 10)",
			":12: services.rec: key repeated (first at line 8)",
		}},
		{"bad/empty.yaml", []string{
			": the policy is empty",
		}},
		{"bad/estimate.yaml", []string{
			":2: estimate.server_tool_allowance_usd: must not be negative",
			":3: estimate.per_request_usd: unknown key (allowed: server_tool_allowance_usd)",
		}},
		{"bad/key-created.yaml", []string{
			":4: workspaces.production.keys[0].created: is in the future (2026-12-01)",
			":6: workspaces.production.keys[2].created: must be a date (YYYY-MM-DD)",
		}},
		{"bad/keys.yaml", []string{
			":3: workspaces.empty.keys: a workspace needs at least one key",
			":4: workspaces.missing.keys: required key is missing",
			":8: workspaces.production.keys[0]: set exactly one of env and file, not both",
			":9: workspaces.production.keys[1]: set one of env or file",
			":10: workspaces.production.keys[2].name: required key is missing",
			":12: workspaces.production.keys[4].name: key name \"dup\" also used at line 11",
			":13: workspaces.production.keys[5].env: \"ANTHROPIC-KEY\" is not an environment variable name",
			":14: workspaces.production.keys[6].file: must not be empty",
		}},
		{"bad/merge-key.yaml", []string{
			":1: defaults: unknown key (allowed: timezone, on_store_failure, unknown_tools, fit_max_tokens, min_max_tokens, estimate, workspaces, teams, services, admin, pricing, webhooks, principals, reconcile)",
			":10: services.rec.team: required key is missing",
			":11: services.rec: merge keys (<<) are not supported: write the keys out",
		}},
		{"bad/missing-required.yaml", []string{
			":6: services.rec.team: required key is missing",
			":6: services.rec.workspace: required key is missing",
		}},
		{"bad/models.yaml", []string{
			":11: services.rec.models[0]: \"claude-[\" is not a valid glob",
			":11: services.rec.models[1]: \"\" is not a valid glob",
			":15: services.one.models: must be a list",
		}},
		{"bad/multi-doc.yaml", []string{
			":2: more than one YAML document: a policy file holds exactly one",
		}},
		{"bad/names.yaml", []string{
			":2: workspaces.Production: workspace name \"Production\" must match [a-z0-9][a-z0-9_-]{0,62}",
			":6: teams.search team: team name \"search team\" must match [a-z0-9][a-z0-9_-]{0,62}",
			":8: services._rec: service name \"_rec\" must match [a-z0-9][a-z0-9_-]{0,62}",
		}},
		{"bad/on-store-failure.yaml", []string{
			":1: on_store_failure: must be reject or allow, not \"open\"",
			":12: services.rec.on_store_failure: must be reject or allow, not \"true\"",
		}},
		{"bad/unknown-tools.yaml", []string{
			":1: unknown_tools: must be reject or allow, not \"ignore\"",
		}},
		{"bad/reconcile.yaml", []string{
			":3: workspaces.production.anthropic_id: must be an Anthropic ID starting with wrkspc_ (as the Console shows it), not \"wrkspc-01\"",
			":6: workspaces.production.keys[1]: anthropic_id apikey_01Ab also used at testdata/bad/reconcile.yaml:5 (workspaces.production.keys[0])",
			":8: pricing.discount: must be a multiplier on list prices, more than 0 and at most 1 (0.9 for 10% off)",
			":10: reconcile.admin_key: set exactly one of env and file, not both",
			":11: reconcile.tolerance_usd: must not be negative",
			":12: reconcile.tolerance_ratio: must be a fraction between 0 and 1",
			":13: reconcile.charge_unmetered: must be true or false",
			":14: reconcile.interval: unknown key (allowed: admin_key, tolerance_usd, tolerance_ratio, charge_unmetered)",
		}},
		{"bad/pricing.yaml", []string{
			":2: pricing.unknown_model: must be reject or charge_max, not \"free\"",
			":4: pricing.models.acme-tuned.cache_read: required key is missing",
			":5: pricing.models.acme-cheap.batch: unknown key (allowed: input, output, cache_write_5m, cache_write_1h, cache_read)",
			":5: pricing.models.acme-cheap.input: must not be negative",
		}},
		{"bad/rate-limit.yaml", []string{
			":11: services.zero.rate_limit.requests_per_second: must be more than 0 and at most 1000000",
			":15: services.burst.rate_limit.burst: must be at least 1",
			":19: services.fraction.rate_limit.burst: must be a whole number",
			":23: services.missing.rate_limit.requests_per_second: required key is missing",
			":27: services.scalar.rate_limit: must be a mapping",
		}},
		{"bad/secret-pasted.yaml", []string{
			":4: workspaces.production.keys[0].env: must name an environment variable, not hold the secret (value not shown)",
			":5: workspaces.production.keys[1].file: must be the path of a file holding the secret, not the secret (value not shown)",
			":7: webhooks[0].url_env: must name an environment variable, not hold the secret (value not shown)",
			":15: services.rec.tokens[0].sha256: must be the sha256 of the token as 64 hex digits (value not shown)",
		}},
		{"bad/syntax.yaml", []string{
			":2: invalid YAML: did not find expected key",
		}},
		{"bad/timezone.yaml", []string{
			":1: timezone: unknown time zone \"Mars/Olympus_Mons\"",
			":5: teams.search.budgets[0].timezone: must name an IANA time zone such as UTC or Europe/Berlin",
			":6: teams.search.budgets[1].timezone: unknown time zone \"3\"",
		}},
		{"bad/token-format.yaml", []string{
			":12: services.rec.tokens[0].sha256: must be the sha256 of the token as 64 hex digits (value not shown)",
			":13: services.rec.tokens[1].sha256: required key is missing",
			":14: services.rec.tokens[2].sha256: must be the sha256 of the token as 64 hex digits (value not shown)",
			":17: admin.tokens[0].sha256: must be the sha256 of the token as 64 hex digits (value not shown)",
		}},
		{"bad/token-reuse.yaml", []string{
			":17: services.rec-canary.tokens[0].sha256: token hash also used at testdata/bad/token-reuse.yaml:12 (services.rec.tokens[0].sha256)",
			":19: services.rec-canary.tokens[2].sha256: token hash also used at testdata/bad/token-reuse.yaml:18 (services.rec-canary.tokens[1].sha256)",
			":22: admin.tokens[0].sha256: token hash also used at testdata/bad/token-reuse.yaml:12 (services.rec.tokens[0].sha256)",
		}},
		{"bad/types.yaml", []string{
			":1: workspaces: must be a mapping",
			":4: teams.search.budgets: must be a list",
			":7: services.rec.team: must be a string",
			":8: services.rec.workspace: workspace \"production\" is not defined",
			":10: services.rec.budgets[0].enforce: must be true or false",
			":11: services.rec.budgets[1]: must be a mapping",
			":12: admin: must be a mapping",
		}},
		{"bad/undefined-refs.yaml", []string{
			":5: workspaces.production.teams[2]: team \"search\" listed twice",
			":10: services.rec.team: team \"recsys\" is not defined",
			":11: services.rec.workspace: workspace \"prod\" is not defined",
		}},
		{"bad/unknown-key.yaml", []string{
			":1: timezon: unknown key (allowed: timezone, on_store_failure, unknown_tools, fit_max_tokens, min_max_tokens, estimate, workspaces, teams, services, admin, pricing, webhooks, principals, reconcile)",
			":5: workspaces.production.keys[0].label: unknown key (allowed: name, env, file, created, anthropic_id)",
			":7: teams.search.budget: unknown key (allowed: budgets)",
			":12: services.rec.budget: unknown key (allowed: team, workspace, tokens, models, budgets, rate_limit, on_store_failure, fit_max_tokens, min_max_tokens, principals)",
		}},
		{"bad/webhooks.yaml", []string{
			":2: webhooks[0]: set exactly one of url_env and url_file, not both",
			":3: webhooks[1]: set one of url_env or url_file",
			":4: webhooks[2].format: must be slack or json, not \"msteams\"",
			":6: webhooks[4].name: webhook name \"dup\" also used at line 5",
			":7: webhooks[5].name: required key is missing",
		}},
		{"bad/workspace-closed.yaml", []string{
			":12: services.rec.workspace: workspace \"production\" is not open to team \"search\" (its teams: ads)",
		}},
		{"bad-folders/bad-budgets", []string{
			"/teams/ads.yaml:2: budgets[0].alert_at[1]: must be larger than the one before (ascending, no repeats)",
			"/teams/search.yaml:2: budgets[0].limit_usd: must be more than 0",
			"/teams/search.yaml:3: budgets[1].period: must be daily, weekly, monthly or total, not \"fortnightly\"",
			"/teams/search.yaml:6: services.rec.workspace: workspace \"nowhere\" is not defined",
			"/teams/search.yaml:8: services.rec.budgets[0].limit_usd: has more than 9 fraction digits (amounts are exact to the nano-dollar)",
		}},
		{"bad-folders/closed-workspace", []string{
			"/teams/ads.yaml:3: services.ads-ranker.workspace: workspace \"search-only\" is not open to team \"ads\" (its teams: search)",
		}},
		{"bad-folders/duplicate-service", []string{
			"/teams/ads.yaml:2: services.rec: service \"rec\" also defined at testdata/bad-folders/duplicate-service/clade.yaml:12 (services.rec)",
			"/teams/search.yaml:2: services.rec: service \"rec\" also defined at testdata/bad-folders/duplicate-service/clade.yaml:12 (services.rec)",
		}},
		{"bad-folders/duplicate-token", []string{
			"/clade.yaml:11: admin.tokens[0].sha256: token hash also used at testdata/bad-folders/duplicate-token/teams/ads.yaml:5 (services.ads-ranker.tokens[0].sha256)",
			"/teams/search.yaml:5: services.rec.tokens[0].sha256: token hash also used at testdata/bad-folders/duplicate-token/teams/ads.yaml:5 (services.ads-ranker.tokens[0].sha256)",
		}},
		{"bad-folders/file-names", []string{
			"/teams/Search Team.yaml: file name \"Search Team\" is not a team name: it must match [a-z0-9][a-z0-9_-]{0,62}",
			"/teams/ads.yml: team files must end in .yaml; this one would be ignored",
		}},
		{"bad-folders/no-main", []string{
			"/clade.yaml: missing: a policy folder needs clade.yaml with the workspaces",
		}},
		{"bad-folders/platform-keys", []string{
			"/teams/search.yaml:1: timezone: belongs in clade.yaml, not in a team file (allowed here: budgets, services)",
			"/teams/search.yaml:2: workspaces: belongs in clade.yaml, not in a team file (allowed here: budgets, services)",
			"/teams/search.yaml:6: pricing: belongs in clade.yaml, not in a team file (allowed here: budgets, services)",
			"/teams/search.yaml:8: admin: belongs in clade.yaml, not in a team file (allowed here: budgets, services)",
			"/teams/search.yaml:10: teams: a team file defines only its own team (\"search\", from the file name): other teams get files of their own",
			"/teams/search.yaml:12: keys: unknown key (allowed in a team file: budgets, services)",
		}},
		{"bad-folders/team-twice", []string{
			"/teams/search.yaml: team \"search\" also defined at testdata/bad-folders/team-twice/clade.yaml:10 (teams.search)",
		}},
		{"bad-folders/wrong-team", []string{
			"/teams/ads.yaml:3: services.ads-ranker.team: a service in the file of team \"ads\" must belong to it, not to team \"search\"",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			path := "testdata/" + tt.fixture
			_, err := Load(path, opts(nil, false))
			if err == nil {
				t.Fatal("Load succeeded, want problems")
			}
			lines := make([]string, len(tt.want))
			for i, w := range tt.want {
				lines[i] = path + w
			}
			if got, want := err.Error(), strings.Join(lines, "\n"); got != want {
				t.Errorf("error text:\n%s\nwant:\n%s", got, want)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) != len(tt.want) || !errors.Is(err, ErrInvalid) {
				t.Errorf("err is not a *ValidationError with %d problems matching ErrInvalid: %#v", len(tt.want), err)
			}
		})
	}
}
