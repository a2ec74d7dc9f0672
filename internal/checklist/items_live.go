package checklist

import (
	"context"
	"fmt"
	"time"
)

const day = 24 * time.Hour

// notChecked is the line of a live item without a store to read.
func notChecked(head, id string, err error) Item {
	it := Item{Heading: head, ID: id, Status: Warn,
		Reason: "not checked: this needs the gateway's store",
		Action: "set CLADE_REDIS_URL, or CLADE_DATA_DIR while the gateway is stopped, or ask a running gateway: GET /admin/checklist"}
	if err != nil {
		it.Reason = "not checked: the store could not be read: " + err.Error()
		it.Action = "check the budget store, then run the checklist again"
	}
	return it
}

func (e *eval) unusedTokens(ctx context.Context) Item {
	if e.o.Live == nil {
		return notChecked(HeadOffboarding, ItemUnusedTokens, nil)
	}
	used, since, err := e.o.Live.LastUsed(ctx)
	if err != nil {
		return notChecked(HeadOffboarding, ItemUnusedTokens, err)
	}
	cutoff := e.now.Add(-UnusedTokenDays * day)
	recordedLongEnough := !since.IsZero() && !since.After(cutoff)
	var f findings
	n, young := 0, 0
	for _, name := range sortedKeys(e.p.Services) {
		for _, t := range e.p.Services[name].Tokens {
			n++
			label := name + "/" + tokenLabel(t.Name, t.SHA256)
			last, ok := used[t.SHA256]
			switch {
			case ok && last.Before(cutoff):
				f.add(Warn, fmt.Sprintf("%s (last used %s)", label, last.UTC().Format(time.DateOnly)),
					"token %s of service %s was last used %s, %d days ago", tokenLabel(t.Name, t.SHA256), name, last.UTC().Format(time.DateOnly), int(e.now.Sub(last)/day))
			case ok:
			case recordedLongEnough:
				f.add(Warn, label+" (never used)", "token %s of service %s has not been used since use was first recorded on %s",
					tokenLabel(t.Name, t.SHA256), name, since.UTC().Format(time.DateOnly))
			default:
				young++
			}
		}
	}
	pass := fmt.Sprintf("every service token was used in the last %d days (%s)", UnusedTokenDays, plural(n, "token", "tokens"))
	if young > 0 {
		start := "not at all yet"
		if !since.IsZero() {
			start = "only since " + since.UTC().Format(time.DateOnly)
		}
		pass = fmt.Sprintf("no token is known to be unused for %d days; %s not used yet, and use has been recorded %s",
			UnusedTokenDays, plural(young, "token is", "tokens are"), start)
	}
	return f.item(HeadOffboarding, ItemUnusedTokens, pass,
		f.reason("", fmt.Sprintf("service tokens not used for %d days, candidates for revocation", UnusedTokenDays)),
		"ask the owning team, then remove the token hashes (or the service) nobody uses and reload")
}

func (e *eval) budgetAdjustments(ctx context.Context) Item {
	if e.o.Live == nil {
		return notChecked(HeadAudit, ItemBudgetAdjustments, nil)
	}
	adj, err := e.o.Live.Adjustments(ctx, e.now.Add(-AdjustmentDays*day))
	if err != nil {
		return notChecked(HeadAudit, ItemBudgetAdjustments, err)
	}
	var f findings
	for _, a := range adj {
		actor := a.Actor
		if actor == "" {
			actor = "no actor given"
		}
		f.add(Warn, fmt.Sprintf("%s %s/%s/%s %s USD by %s", a.At.UTC().Format(time.DateOnly), a.Scope, a.Name, a.ID, a.AmountUSD, actor),
			"%s: %s/%s/%s adjusted by %s USD by %s from %s, reason: %s", a.At.UTC().Format(time.RFC3339), a.Scope, a.Name, a.ID, a.AmountUSD, actor, a.Remote, a.Reason)
	}
	return f.item(HeadAudit, ItemBudgetAdjustments, fmt.Sprintf("no budget adjustments in the last %d days", AdjustmentDays),
		f.reason("", fmt.Sprintf("budget adjustments in the last %d days to review", AdjustmentDays)),
		"review each adjustment (who, why, how much) against the request that asked for it; credits deserve the closest look")
}
