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
-- ARGV[8+4n..11+4n] optional fit: fixed, per unit, min units, max units.
--                  When the amount does not fit, the hold is placed at
--                  fixed + k * per unit for the largest k <= max units that
--                  fits every enforced budget, if k >= min units (see
--                  Fit in fit.go; the caller keeps these under 2^53)
--
-- Returns one of
--   {"reset", stored_epoch}
--   {"dup", state}                    the request ID belongs to a hold that
--                                     is settled or no longer live
--   {"over", i, spent, rsv, orphans}  enforced budget i has no room; nothing
--                                     was placed
--   {"ok", orphans, amount, spent_1, rsv_1, ..., spent_n, rsv_n}  the
--                                     amount placed (ARGV[4] or fitted) and
--                                     levels before placing: the caller adds
--                                     the amount to each rsv (Lua numbers are
--                                     doubles, so amounts are never added
--                                     here)
--   {"again", orphans, amount, spent_1, rsv_1, ...}  a retry found its own
--                                     live hold; levels as they are, hold
--                                     included
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

local function levels(tag, a) return with_levels({tag, orphans, a}, lv, n) end

local state = redis.call('HMGET', hold, 'state', 'amt')
if state[1] then
  -- go-redis retries a call whose reply was lost; the retry finds its own
  -- live hold (at the amount it was placed at, fitted or not) and reports
  -- it again instead of placing it twice.
  local held = state[2] or amt
  if state[1] == 'live' and redis.call('ZSCORE', KEYS[4], member(id, held, 1)) then return levels('again', held) end
  return {'dup', state[1]}
end

local function over_at(i)
  return {'over', i, lv[i][1] or '0', lv[i][2] or '0', orphans}
end

-- fitted returns the largest fitted amount that fits every enforced
-- budget, or nil and the tightest budget. Room is computed in doubles from
-- the split halves, exact below 2^53; a budget with more room than that
-- cannot be the one that binds, since the caller's amounts are below it.
local function fitted(f)
  local fixed, per = tonumber(ARGV[f]), tonumber(ARGV[f + 1])
  local lo, hi = tonumber(ARGV[f + 2]), tonumber(ARGV[f + 3])
  local room, at
  for i = 1, n do
    local base = 3 + 4 * i
    if ARGV[base + 2] == '1' then
      local lh, ll = split(ARGV[base + 1])
      local sh, sl = split(lv[i][1] or '0')
      local rh, rl = split(lv[i][2] or '0')
      local left = (lh - sh - rh) * E9 + (ll - sl - rl)
      if not room or left < room then room, at = left, i end
    end
  end
  if not room or room < fixed then return nil, at end
  local k = math.min(math.floor((room - fixed) / per), hi)
  -- Check the result exactly, as the full amount was; a rounding of the
  -- division costs at most a unit or two.
  while k >= lo do
    local a = string.format('%.0f', fixed + k * per)
    local ok = true
    for i = 1, n do
      local base = 3 + 4 * i
      if ARGV[base + 2] == '1' and not fits(lv[i][1] or '0', lv[i][2] or '0', a, ARGV[base + 1]) then
        ok = false
        break
      end
    end
    if ok then return a, at end
    k = k - 1
  end
  return nil, at
end

for i = 1, n do
  local base = 3 + 4 * i
  if ARGV[base + 2] == '1' then
    if not fits(lv[i][1] or '0', lv[i][2] or '0', amt, ARGV[base + 1]) then
      local f = 8 + 4 * n
      if not ARGV[f] then return over_at(i) end
      local a, at = fitted(f)
      if not a then return over_at(at) end
      amt = a
      break
    end
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
return levels('ok', amt)
