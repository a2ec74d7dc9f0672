package policy

import (
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/clade-gateway/clade-gateway/internal/budget"
)

// parseBudgets reads the budgets of one owner. Budget IDs name store keys,
// so they must be unique per owner and stable. An id defaults to the
// period, so two budgets of one period need an explicit id on at least one
// of them; nothing else constrains them.
func (w *walker) parseBudgets(n *yaml.Node, p string, scope budget.Scope, owner string) []rawBudget {
	type parsed struct {
		rb       rawBudget
		explicit bool
		at       pos // the id if written, else the item
	}
	var all []parsed
	for i, item := range w.seq(n, p) {
		ip := index(p, i)
		o := w.object(item, ip, item.Line, "id", "period", "limit_usd", "alert_at", "enforce", "timezone")
		if o == nil {
			continue
		}
		b, ok := w.parseBudget(o, scope, owner)
		if !ok {
			continue
		}
		pb := parsed{rb: b, at: w.at(item, ip)}
		if idn, idp := o.get("id"); idn != nil {
			pb.explicit, pb.at = true, w.at(idn, idp)
		}
		all = append(all, pb)
	}
	seen := map[string]pos{}
	var out []rawBudget
	for _, pb := range all {
		b := pb.rb.b
		if first, dup := seen[b.ID]; dup {
			how := ""
			if !pb.explicit {
				how = " (the default: the period)"
			}
			w.probs.add(pb.at, "budget id %s%s also used at line %d: give one of them an explicit id", strconv.Quote(b.ID), how, first.line)
			continue
		}
		seen[b.ID] = pb.at
		out = append(out, pb.rb)
	}
	return out
}

func (w *walker) parseBudget(o *object, scope budget.Scope, owner string) (rawBudget, bool) {
	rb := rawBudget{b: budget.Budget{Scope: scope, Name: owner, Enforce: true}}
	ok := true
	if n, p := o.require("period"); n == nil {
		ok = false
	} else if s, sok := w.str(n, p); !sok {
		ok = false
	} else {
		switch per := budget.Period(s); per {
		case budget.Daily, budget.Weekly, budget.Monthly, budget.Total:
			rb.b.Period, rb.b.ID = per, s
		default:
			w.errorf(n, p, "must be daily, weekly, monthly or total, not %s", strconv.Quote(s))
			ok = false
		}
	}
	if n, p := o.get("id"); n != nil {
		if s, sok := w.str(n, p); !sok {
			ok = false
		} else if !idRE.MatchString(s) {
			w.errorf(n, p, "budget id %s must match [a-z0-9_-]{1,63}", strconv.Quote(s))
			ok = false
		} else {
			rb.b.ID = s
		}
	}
	if n, p := o.require("limit_usd"); n == nil {
		ok = false
	} else if v, vok := w.amount(n, p); !vok {
		ok = false
	} else if v <= 0 {
		w.errorf(n, p, "must be more than 0")
		ok = false
	} else {
		rb.b.Limit = v
	}
	if n, p := o.get("alert_at"); n != nil {
		prev := 0.0
		for i, item := range w.seq(n, p) {
			ip := index(p, i)
			f, fok := w.number(item, ip)
			switch {
			case !fok:
				ok = false
			case f <= 0 || f > 1:
				w.errorf(item, ip, "must be a fraction of the limit: more than 0 and at most 1")
				ok = false
			case f <= prev:
				w.errorf(item, ip, "must be larger than the one before (ascending, no repeats)")
				ok = false
			default:
				rb.b.AlertAt = append(rb.b.AlertAt, f)
				prev = f
			}
		}
	}
	if n, p := o.get("enforce"); n != nil {
		e, eok := w.boolean(n, p)
		ok = ok && eok
		rb.b.Enforce = e
	}
	if n, p := o.get("timezone"); n != nil {
		rb.loc = w.location(n, p)
		ok = ok && rb.loc != nil
	}
	return rb, ok
}
