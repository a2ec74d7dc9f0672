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

-- Expired holds are charged (pruned) at most once a second per window:
-- admission reads spent + rsv, which pruning does not change, so only the
-- split between the two lags, by at most PRUNE_EVERY_MS. The window's
-- "pr" field is when it may next be pruned.
local PRUNE_EVERY_MS = 1000
local orphans = 0
local lv = {}
for i = 1, n do
  local b = KEYS[1 + 2 * i]
  local v = redis.call('HMGET', b, 'spent', 'rsv', 'limit', 'enf', 'scope', 'pr')
  if v[2] and v[2] ~= '0' and (not v[6] or tonumber(v[6]) <= tonumber(now)) then
    orphans = orphans + prune(b, KEYS[2 + 2 * i], now)
    redis.call('HSET', b, 'pr', tonumber(now) + PRUNE_EVERY_MS)
    v = redis.call('HMGET', b, 'spent', 'rsv', 'limit', 'enf', 'scope')
  end
  lv[i] = v
end

local function levels(tag)
  local out = {tag, orphans}
  for i = 1, n do
    out[#out + 1] = lv[i][1] or '0'
    out[#out + 1] = lv[i][2] or '0'
  end
  return out
end

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
  local base = 3 + 4 * i
  local b, z = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  redis.call('ZADD', z, ARGV[5], member(id, amt, i))
  -- The budget's limit, enforcement and scope, as of this reserve, for
  -- settle's threshold alerts; written only when they changed.
  local cur = lv[i]
  if cur[3] ~= ARGV[base + 1] or cur[4] ~= ARGV[base + 2] or cur[5] ~= ARGV[base + 4] then
    redis.call('HSET', b, 'limit', ARGV[base + 1], 'enf', ARGV[base + 2], 'scope', ARGV[base + 4])
  end
  incr(b, 'rsv', amt)
  local ttl = tonumber(ARGV[base + 3])
  if ttl > 0 then
    -- A window hash without a limit was just created (or only ever
    -- charged by a journaled settle, which sets its own TTL). With no
    -- live holds (rsv 0) the zset was empty, so ZADD created it: an
    -- emptied zset is deleted by Redis, TTL and all.
    local fresh = lv[i][3] == false
    if fresh then redis.call('EXPIRE', b, ttl) end
    if fresh or (lv[i][2] or '0') == '0' then redis.call('EXPIRE', z, ttl) end
  end
end
redis.call('HSET', hold, 'amt', amt, 'state', 'live', 'exp', ARGV[5], 'keys', ARGV[7])
redis.call('PEXPIRE', hold, ARGV[6])
return levels('ok')
