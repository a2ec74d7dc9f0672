-- lib.lua is prepended to every budget script; it never runs on its own.
--
-- Amounts are int64 nano-USD carried as decimal strings. Lua numbers are
-- doubles, exact only up to 2^53 (about 9 million USD), so amounts are never
-- added in Lua: HINCRBY does exact 64-bit arithmetic inside Redis, and fits()
-- compares sums of values split at 1e9.

local E9 = 1000000000

-- split returns hi, lo with s = hi*1e9 + lo and 0 <= lo < 1e9.
local function split(s)
  local neg = string.sub(s, 1, 1) == '-'
  if neg then s = string.sub(s, 2) end
  local n = string.len(s)
  local hi, lo = 0, tonumber(s)
  if n > 9 then
    hi = tonumber(string.sub(s, 1, n - 9))
    lo = tonumber(string.sub(s, n - 8))
  end
  if neg then
    if lo == 0 then return -hi, 0 end
    return -hi - 1, E9 - lo
  end
  return hi, lo
end

-- fits reports whether a + b + c <= limit, exactly.
local function fits(a, b, c, limit)
  local h, l = split(a)
  local h2, l2 = split(b)
  h, l = h + h2, l + l2
  h2, l2 = split(c)
  h, l = h + h2, l + l2
  h = h + math.floor(l / E9)
  l = l % E9
  local lh, ll = split(limit)
  return h < lh or (h == lh and l <= ll)
end

-- negate returns -s as a decimal string, or nil for zero: HINCRBY rejects
-- "-0", and adding zero is a no-op anyway.
local function negate(s)
  if s == nil or s == '0' then return nil end
  if string.sub(s, 1, 1) == '-' then return string.sub(s, 2) end
  return '-' .. s
end

-- incr adds the decimal string s to a hash field; nil or "0" adds nothing
-- (and so creates nothing).
local function incr(key, field, s)
  if s and s ~= '0' then redis.call('HINCRBY', key, field, s) end
end

-- epoch_mismatch returns the stored epoch ("" when absent) if it is not the
-- one the caller trusts, before the script changes anything.
local function epoch_mismatch(key, want)
  local have = redis.call('GET', key)
  if have == want then return nil end
  return have or ''
end

-- level returns a window's spent and live-hold total.
local function level(b)
  local v = redis.call('HMGET', b, 'spent', 'rsv')
  return v[1] or '0', v[2] or '0'
end

-- member is a hold's entry in the hold zset of its window i: the request
-- ID, the amount held, and "1" if the window is the hold's first budget
-- (so an orphan is counted once however many windows it held). Carrying
-- the amount in the member spares a hash field per hold and window, and a
-- command to write and one to delete it.
local function member(id, amt, i)
  local first = '0'
  if i == 1 then first = '1' end
  return id .. '|' .. amt .. '|' .. first
end

-- unmember splits a member; the request ID may itself contain "|" (batch
-- custom_ids are the client's), so the two fixed fields are taken from the
-- end.
local function unmember(m)
  return string.match(m, '^(.*)|(%d+)|([01])$')
end

-- prune charges every hold on one window whose lease ended at or before now
-- into spent at its estimate: the hold becomes an orphan there, and a late
-- settlement corrects the charge. Each window prunes itself whenever a
-- script reads it, so no script touches keys it was not given; a hold's
-- windows share one lease end, so each is charged before anyone can read
-- it. Returns how many pruned holds had this window as their first budget,
-- so an orphan is counted once however many windows it held.
--
-- At most PRUNE_MAX holds are pruned per window per call, so a dead
-- replica's thousands of holds cannot stall Redis in one script. An expired
-- hold not yet pruned still counts in rsv, so spent + rsv, which admission
-- uses, is the same either way; only the split lags until later calls.
local PRUNE_MAX = 1000
local function prune(b, z, now)
  local ms = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, PRUNE_MAX)
  if #ms == 0 then return 0 end
  local first = 0
  for i = 1, #ms do
    local _, amt, flag = unmember(ms[i])
    if amt then
      incr(b, 'spent', amt)
      incr(b, 'rsv', negate(amt))
    end
    if flag == '1' then first = first + 1 end
  end
  redis.call('ZREM', z, unpack(ms))
  return first
end

-- read_windows reads the n windows at KEYS[1+2i] (hash) and KEYS[2+2i]
-- (hold zset), each once: {spent, rsv, limit, enf, scope} per window, and
-- how many orphans pruning charged.
--
-- Expired holds are charged (pruned) at most once a second per window:
-- admission reads spent + rsv, which pruning does not change, so only the
-- split between the two lags, by at most PRUNE_EVERY_MS. The window's
-- "pr" field is when it may next be pruned.
local PRUNE_EVERY_MS = 1000
local function read_windows(n, now)
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
  return lv, orphans
end

-- with_levels appends the spent and rsv of the n windows in lv (as
-- read_windows returned them) to out, and returns out.
local function with_levels(out, lv, n)
  for i = 1, n do
    out[#out + 1] = lv[i][1] or '0'
    out[#out + 1] = lv[i][2] or '0'
  end
  return out
end

-- place_limits records a window's limit, enforcement and scope (for
-- settle's overshoot metric) when they changed, and gives a window's keys
-- their TTL when this call creates them. cur is the window as read_windows
-- returned it; base indexes ARGV: limit, enforce, TTL in s, scope.
local function place_limits(b, z, cur, base)
  if cur[3] ~= ARGV[base] or cur[4] ~= ARGV[base + 1] or cur[5] ~= ARGV[base + 3] then
    redis.call('HSET', b, 'limit', ARGV[base], 'enf', ARGV[base + 1], 'scope', ARGV[base + 3])
  end
  local ttl = tonumber(ARGV[base + 2])
  if ttl > 0 then
    -- A window hash without a limit was just created (or only ever
    -- charged by a journaled settle, which sets its own TTL). With no
    -- live holds (rsv 0) the zset was empty, so ZADD created it: an
    -- emptied zset is deleted by Redis, TTL and all.
    local fresh = cur[3] == false
    if fresh then redis.call('EXPIRE', b, ttl) end
    if fresh or (cur[2] or '0') == '0' then redis.call('EXPIRE', z, ttl) end
  end
end
