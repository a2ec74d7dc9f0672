package redisstore

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"

	"github.com/clade-gateway/clade-gateway/internal/budget/storemetrics"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/redis/go-redis/v9"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// Each script's KEYS/ARGV/return contract is the comment at the top of its
// file. The budget scripts share helpers (exact comparison, pruning) that
// are prepended from lib.lua.
var (
	//go:embed scripts/lib.lua
	luaLib string
	//go:embed scripts/reserve.lua
	luaReserve string
	//go:embed scripts/settle.lua
	luaSettle string
	//go:embed scripts/grant.lua
	luaGrant string
	//go:embed scripts/extend.lua
	luaExtend string
	//go:embed scripts/status.lua
	luaStatus string
	//go:embed scripts/adjust.lua
	luaAdjust string
	//go:embed scripts/notify.lua
	luaNotify string
	//go:embed scripts/lock.lua
	luaLock string
	//go:embed scripts/ledger.lua
	luaLedger string
)

// scripts are per store: a redis.Script caches its digest, and the house
// style keeps mutable state out of package variables.
type scripts struct {
	reserve, settle, grant, extend, status, adjust, notify, lock *redis.Script
}

func newScripts() scripts {
	return scripts{
		reserve: redis.NewScript(luaLib + luaReserve),
		settle:  redis.NewScript(luaLib + luaLedger + luaSettle),
		grant:   redis.NewScript(luaLib + luaLedger + luaGrant),
		extend:  redis.NewScript(luaLib + luaExtend),
		status:  redis.NewScript(luaLib + luaStatus),
		adjust:  redis.NewScript(luaLib + luaAdjust),
		notify:  redis.NewScript(luaNotify),
		lock:    redis.NewScript(luaLock),
	}
}

// errReply reports a script reply of an unexpected shape: a script and
// its parser disagree, which is a bug, so the store fails closed.
func errReply(script string, v any) error {
	return fmt.Errorf("%w: unexpected %s.lua reply %v", budget.ErrUnavailable, script, v)
}

// replyHead splits a reply into its tag and the rest, and decodes the
// "reset" reply every budget script may give.
func replyHead(script string, v any) (tag string, rest []any, reset *string, err error) {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return "", nil, nil, errReply(script, v)
	}
	tag, ok = arr[0].(string)
	if !ok {
		return "", nil, nil, errReply(script, v)
	}
	if tag == "reset" {
		if len(arr) != 2 {
			return "", nil, nil, errReply(script, v)
		}
		s, _ := arr[1].(string)
		return tag, nil, &s, nil
	}
	return tag, arr[1:], nil, nil
}

// nanos reads an amount a script returned as a decimal string (or, for a
// small count, an integer).
func nanos(v any) (money.Nanos, bool) {
	switch x := v.(type) {
	case string:
		if x == "" {
			return 0, true
		}
		n, err := strconv.ParseInt(x, 10, 64)
		return money.Nanos(n), err == nil
	case int64:
		return money.Nanos(x), true
	}
	return 0, false
}

func nanosList(vs []any) ([]money.Nanos, bool) {
	out := make([]money.Nanos, len(vs))
	for i, v := range vs {
		n, ok := nanos(v)
		if !ok {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

type reserveReply struct {
	reset   *string
	tag     string // ok, over, dup
	state   string // dup: the existing hold's state
	over    int    // over: index of the failing budget
	orphans int64
	amount  money.Nanos    // ok: the amount placed
	levels  []budget.Level // ok: per budget after placing; over: one entry, before
}

func parseReserveReply(v any, n int) (reserveReply, error) {
	tag, rest, reset, err := replyHead("reserve", v)
	if err != nil || reset != nil {
		return reserveReply{reset: reset}, err
	}
	r := reserveReply{tag: tag}
	switch tag {
	case "dup":
		if len(rest) == 1 {
			r.state, _ = rest[0].(string)
			return r, nil
		}
	case "over":
		if len(rest) == 4 {
			i, ok1 := rest[0].(int64)
			ns, ok2 := nanosList(rest[1:])
			if ok1 && ok2 && i >= 1 && int(i) <= n {
				r.over = int(i) - 1
				r.levels = []budget.Level{{Spent: ns[0], Reserved: ns[1]}}
				r.orphans = int64(ns[2])
				return r, nil
			}
		}
	case "ok", "again":
		if len(rest) == 2+2*n {
			if ns, ok := nanosList(rest); ok && ns[1] >= 0 {
				r.orphans, r.amount = int64(ns[0]), ns[1]
				for i := 0; i < n; i++ {
					r.levels = append(r.levels, budget.Level{Spent: ns[2+2*i], Reserved: ns[3+2*i]})
				}
				if tag == "ok" {
					// Levels from before the hold was placed: add it here,
					// in exact int64 arithmetic.
					for i := range r.levels {
						r.levels[i].Reserved += r.amount
					}
				}
				r.tag = "ok"
				return r, nil
			}
		}
	}
	return reserveReply{}, errReply("reserve", v)
}

// settleReply is one request's reply within a settle.lua call.
type settleReply struct {
	tag     string   // ok, dup, keys
	keys    []string // keys: where the hold really is
	effects []storemetrics.Effect
}

func parseSettleReply(v any, n int, actual money.Nanos) (settleReply, error) {
	tag, rest, reset, err := replyHead("settle", v)
	if err == nil && reset != nil { // only the call as a whole can be reset
		err = errReply("settle", v)
	}
	if err != nil {
		return settleReply{}, err
	}
	r := settleReply{tag: tag}
	switch tag {
	case "dup":
		if len(rest) == 0 {
			return r, nil
		}
	case "keys":
		if len(rest) == 1 {
			if s, ok := rest[0].(string); ok && s != "" {
				r.keys = strings.Split(s, "\n")
				return r, nil
			}
		}
	case "ok":
		if len(rest) != 6*n {
			break
		}
		for i := 0; i < n; i++ {
			f := rest[6*i : 6*i+6]
			ns, ok := nanosList(f[:4])
			enf, _ := f[4].(string)
			scope, ok2 := f[5].(string)
			if !ok || !ok2 {
				return settleReply{}, errReply("settle", v)
			}
			before := ns[0] + ns[1]
			r.effects = append(r.effects, storemetrics.Effect{
				Before:   before,
				After:    before + actual - ns[2],
				Limit:    ns[3],
				Enforced: enf == "1",
				Scope:    scope,
			})
		}
		return r, nil
	}
	return settleReply{}, errReply("settle", v)
}

type extendReply struct {
	reset   *string
	tag     string // ok, gone, keys
	keys    []string
	orphans int64
}

func parseExtendReply(v any) (extendReply, error) {
	tag, rest, reset, err := replyHead("extend", v)
	if err != nil || reset != nil {
		return extendReply{reset: reset}, err
	}
	r := extendReply{tag: tag}
	switch tag {
	case "ok", "gone":
		if len(rest) == 1 {
			if n, ok := rest[0].(int64); ok {
				r.orphans = n
				return r, nil
			}
		}
	case "keys":
		if len(rest) == 1 {
			if s, ok := rest[0].(string); ok && s != "" {
				r.keys = strings.Split(s, "\n")
				return r, nil
			}
		}
	}
	return extendReply{}, errReply("extend", v)
}

type statusReply struct {
	reset   *string
	orphans int64
	levels  []budget.Level
}

func parseStatusReply(v any, n int) (statusReply, error) {
	tag, rest, reset, err := replyHead("status", v)
	if err != nil || reset != nil {
		return statusReply{reset: reset}, err
	}
	if tag == "ok" && len(rest) == 1+2*n {
		if ns, ok := nanosList(rest); ok {
			r := statusReply{orphans: int64(ns[0])}
			for i := 0; i < n; i++ {
				r.levels = append(r.levels, budget.Level{Spent: ns[1+2*i], Reserved: ns[2+2*i]})
			}
			return r, nil
		}
	}
	return statusReply{}, errReply("status", v)
}

type adjustReply struct {
	reset *string
	spent money.Nanos
}

func parseAdjustReply(v any) (adjustReply, error) {
	tag, rest, reset, err := replyHead("adjust", v)
	if err != nil || reset != nil {
		return adjustReply{reset: reset}, err
	}
	if tag == "ok" && len(rest) == 1 {
		if s, ok := nanos(rest[0]); ok {
			return adjustReply{spent: s}, nil
		}
	}
	if tag == "range" {
		return adjustReply{}, budget.ErrAdjustRange
	}
	return adjustReply{}, errReply("adjust", v)
}

// parseClaimReply decodes notify.lua and lock.lua, which both answer 1 or 0.
func parseClaimReply(script string, v any) (bool, error) {
	n, ok := v.(int64)
	if !ok || (n != 0 && n != 1) {
		return false, errReply(script, v)
	}
	return n == 1, nil
}
