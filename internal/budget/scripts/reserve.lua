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
--   {"ok", orphans, spent_1, rsv_1, ..., spent_n, rsv_n}  levels after placing
-- where orphans counts the expired holds this call charged.

local bad = epoch_mismatch(KEYS[1], ARGV[1])
if bad then return {'reset', bad} end

local now, id, amt = ARGV[2], ARGV[3], ARGV[4]
local hold = KEYS[2]
local n = (#KEYS - 2) / 2

local orphans = 0
for i = 1, n do
  orphans = orphans + prune(KEYS[1 + 2 * i], KEYS[2 + 2 * i], now)
end

local function levels()
  local out = {'ok', orphans}
  for i = 1, n do
    local s, r = level(KEYS[1 + 2 * i])
    out[#out + 1] = s
    out[#out + 1] = r
  end
  return out
end

local state = redis.call('HGET', hold, 'state')
if state then
  -- go-redis retries a call whose reply was lost; the retry finds its own
  -- live hold and reports it again instead of placing it twice.
  if state == 'live' and redis.call('ZSCORE', KEYS[4], id) then return levels() end
  return {'dup', state}
end

for i = 1, n do
  local base = 3 + 4 * i
  if ARGV[base + 2] == '1' then
    local s, r = level(KEYS[1 + 2 * i])
    if not fits(s, r, amt, ARGV[base + 1]) then return {'over', i, s, r, orphans} end
  end
end

for i = 1, n do
  local base = 3 + 4 * i
  local b, z = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  local first = '0'
  if i == 1 then first = '1' end
  redis.call('ZADD', z, ARGV[5], id)
  redis.call('HSET', b, 'h:' .. id, amt .. ':' .. first,
    'limit', ARGV[base + 1], 'enf', ARGV[base + 2], 'scope', ARGV[base + 4])
  incr(b, 'rsv', amt)
  local ttl = tonumber(ARGV[base + 3])
  if ttl > 0 then
    redis.call('EXPIRE', b, ttl)
    redis.call('EXPIRE', z, ttl)
  end
end
redis.call('HSET', hold, 'amt', amt, 'state', 'live', 'exp', ARGV[5], 'keys', ARGV[7])
redis.call('PEXPIRE', hold, ARGV[6])
return levels()
