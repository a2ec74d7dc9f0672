-- grant.lua applies one step of a replica's grant: a hold that the replica
-- admits requests from locally (see grant.go). A step settles requests the
-- replica finished (their actual cost is charged, their estimates leave the
-- grant), may return unused amount, may grow the grant if it fits, and
-- renews its lease. Steps of one grant are numbered; a step whose number
-- was already applied (go-redis retried it after a lost reply, or the
-- replica resent it) changes nothing and reports what it did the first
-- time.
--
-- KEYS[1]          epoch
-- KEYS[2]          grant record
-- KEYS[1+2i]       window hash of budget i (i = 1..n)
-- KEYS[2+2i]       hold zset of budget i
-- KEYS[3+2n..]     the h ledger hour hashes of this step's lines
-- ARGV[1]          epoch the caller trusts
-- ARGV[2]          now, unix ms (the caller's injected clock)
-- ARGV[3]          grant ID
-- ARGV[4]          step number (1 for the step that creates the grant)
-- ARGV[5]          held: the grant's amount before this step
-- ARGV[6]          amount after this step if it grows (the growth fits)
-- ARGV[7]          amount after this step if it does not grow
-- ARGV[8]          growth to check against enforced limits ("0": none)
-- ARGV[9]          rsv change if it grows (signed)
-- ARGV[10]         rsv change if it does not (signed)
-- ARGV[11]         actual cost of the requests settled in this step
-- ARGV[12]         spent change if the grant was lost (signed): actual
--                  less everything this step takes out of the grant
-- ARGV[13]         lease end, unix ms
-- ARGV[14]         grant record TTL, ms
-- ARGV[15]         the n window keys joined by "\n"
-- ARGV[12+4i..15+4i] budget i: limit, enforce ("1"/"0"), window TTL in s
--                  ("0" = never expires), scope
-- ARGV[16+4n..]    the ledger lines of the requests settled in this step
--                  (see ledger.lua), added when the step is applied
-- ARGV[#ARGV]      h
--
-- Returns {"reset", stored_epoch}, {"seq", applied_step} when the step is
-- out of order (a bug), or {tag, lease_end, orphans, spent_1, rsv_1, ...,
-- spent_n, rsv_n} with levels before this step (after it for "dup"), where
-- tag is
--   "ok"    applied, grown if asked
--   "over"  applied without the growth: an enforced budget had no room
--   "lost"  the grant's lease had ended and it was charged as an orphan at
--           its amount; this step only corrected spent by ARGV[12]
--   "dup"   applied before; lease_end and the tag it had (after the
--           levels) are the first application's

local bad = epoch_mismatch(KEYS[1], ARGV[1])
if bad then return {'reset', bad} end

local now, id, step = ARGV[2], ARGV[3], tonumber(ARGV[4])
local held = ARGV[5]
local grant = KEYS[2]
local h = tonumber(ARGV[#ARGV])
local n = (#KEYS - 2 - h) / 2
local ledger_at = 16 + 4 * n

local lv, orphans = read_windows(n, now)
local function levels(tag, exp) return with_levels({tag, exp, orphans}, lv, n) end

local rec = redis.call('HMGET', grant, 'step', 'last', 'exp', 'state')
local applied = tonumber(rec[1] or '0')
if applied >= step then
  local out = levels('dup', rec[3] or '0')
  out[#out + 1] = rec[2]
  return out
end
if applied ~= step - 1 then return {'seq', applied} end

-- A grant is live while its members are in the zsets: pruning charged a
-- grant whose lease ended at its amount and removed them.
local live = step == 1 or (rec[4] == 'live' and
  (held == '0' or redis.call('ZSCORE', KEYS[4], member(id, held, 1)) ~= false))

local exp, ttl = ARGV[13], ARGV[14]
if not live then
  -- The orphan charge counted every estimate still in the grant; replace
  -- those of the requests settled now by their actual cost, and take back
  -- what is returned unused.
  for i = 1, n do incr(KEYS[1 + 2 * i], 'spent', ARGV[12]) end
  ledger_add(2 + 2 * n, ledger_at)
  redis.call('HSET', grant, 'state', 'lost', 'step', step, 'last', 'lost')
  redis.call('PEXPIRE', grant, ttl)
  return levels('lost', rec[3] or '0')
end

local tag, amt, drsv = 'ok', ARGV[6], ARGV[9]
if ARGV[8] ~= '0' then
  for i = 1, n do
    local base = 12 + 4 * i
    if ARGV[base + 1] == '1' and not fits(lv[i][1] or '0', lv[i][2] or '0', ARGV[8], ARGV[base]) then
      tag, amt, drsv = 'over', ARGV[7], ARGV[10]
      break
    end
  end
end

for i = 1, n do
  local b, z = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  if held ~= '0' and held ~= amt then redis.call('ZREM', z, member(id, held, i)) end
  -- ZADD of the same member only moves its lease end.
  if amt ~= '0' then redis.call('ZADD', z, exp, member(id, amt, i)) end
  incr(b, 'rsv', drsv)
  incr(b, 'spent', ARGV[11])
  place_limits(b, z, lv[i], 12 + 4 * i)
end
ledger_add(2 + 2 * n, ledger_at)
redis.call('HSET', grant, 'state', 'live', 'step', step, 'last', tag, 'exp', exp, 'amt', amt, 'keys', ARGV[15])
redis.call('PEXPIRE', grant, ttl)
return levels(tag, exp)
