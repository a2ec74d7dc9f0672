-- reserve.lua places one hold on every budget window at once, or on none.
--
-- KEYS[1]          epoch
-- KEYS[2]          hold record of this request
-- KEYS[1+2i]       window hash of budget i (i = 1..n)
-- KEYS[2+2i]       hold zset of budget i
-- ARGV[1]          epoch the caller trusts
-- ARGV[2]          now, unix ms (the caller's injected clock)
-- ARGV[3]          request ID
-- ARGV[4]          amount, nano-USD
-- ARGV[5]          lease end, unix ms
-- ARGV[6]          hold record TTL, ms
-- ARGV[7]          the n window keys joined by "\n"
-- ARGV[4+4i..7+4i] budget i: limit, enforce ("1"/"0"), window TTL in s
--                  ("0" = never expires), scope
--
-- Returns one of
--   {"reset", stored_epoch}
--   {"dup", state}                    the request ID belongs to a hold that
--                                     is settled or no longer live
--   {"over", i, spent, rsv, orphans}  enforced budget i has no room; nothing
--                                     was placed
--   {"ok", orphans, spent_1, rsv_1, ..., spent_n, rsv_n}  levels before
--                                     placing: the caller adds the amount to
--                                     each rsv (Lua numbers are doubles, so
--                                     amounts are never added here)
--   {"again", orphans, spent_1, rsv_1, ...}  a retry found its own live
--                                     hold; levels as they are, hold included
-- where orphans counts the expired holds this call charged.
--
-- Each window is read once (one HMGET) and a key's TTL is set only when the
-- script creates it: the commands per window are what the budget store
-- costs Redis on every request.

local bad = epoch_mismatch(KEYS[1], ARGV[1])
if bad then return {'reset', bad} end

local now, id, amt = ARGV[2], ARGV[3], ARGV[4]
local hold = KEYS[2]
local n = (#KEYS - 2) / 2

local lv, orphans = read_windows(n, now)

local function levels(tag) return with_levels({tag, orphans}, lv, n) end

local state = redis.call('HGET', hold, 'state')
if state then
  -- go-redis retries a call whose reply was lost; the retry finds its own
  -- live hold and reports it again instead of placing it twice.
  if state == 'live' and redis.call('ZSCORE', KEYS[4], member(id, amt, 1)) then return levels('again') end
  return {'dup', state}
end

for i = 1, n do
  local base = 3 + 4 * i
  if ARGV[base + 2] == '1' then
    local s, r = lv[i][1] or '0', lv[i][2] or '0'
    if not fits(s, r, amt, ARGV[base + 1]) then return {'over', i, s, r, orphans} end
  end
end

for i = 1, n do
  local b, z = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  redis.call('ZADD', z, ARGV[5], member(id, amt, i))
  incr(b, 'rsv', amt)
  place_limits(b, z, lv[i], 4 + 4 * i)
end
redis.call('HSET', hold, 'amt', amt, 'state', 'live', 'exp', ARGV[5], 'keys', ARGV[7])
redis.call('PEXPIRE', hold, ARGV[6])
return levels('ok')
