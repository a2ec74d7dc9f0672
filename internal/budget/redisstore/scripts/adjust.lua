-- adjust.lua adds a signed amount to one window's spend, once per op ID.
--
-- KEYS[1]        epoch
-- KEYS[2]        window hash
-- KEYS[3]        marker of this operation (so a retried call applies once)
-- ARGV[1]        epoch the caller trusts
-- ARGV[2]        delta, nano-USD (may be negative)
-- ARGV[3]        window TTL in s ("0" = never expires)
-- ARGV[4]        marker TTL in s
-- ARGV[5]        bound of the window's spend after the change (±)
--
-- Returns {"reset", stored_epoch}, {"range", spent} (nothing applied: the
-- spend would leave ±ARGV[5], where HINCRBY could come near wrapping) or
-- {"ok", spent_after}

local bad = epoch_mismatch(KEYS[1], ARGV[1])
if bad then return {'reset', bad} end

if redis.call('EXISTS', KEYS[3]) == 0 then
  -- Lua numbers are doubles: the check is approximate to a few hundred
  -- nano-USD near the bound, which lies far inside int64.
  local nxt = (tonumber(redis.call('HGET', KEYS[2], 'spent')) or 0) + tonumber(ARGV[2])
  local bound = tonumber(ARGV[5])
  if nxt > bound or nxt < -bound then
    local s = level(KEYS[2])
    return {'range', s}
  end
  redis.call('SET', KEYS[3], '1', 'EX', ARGV[4])
  incr(KEYS[2], 'spent', ARGV[2])
  local ttl = tonumber(ARGV[3])
  if ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
end
local s = level(KEYS[2])
return {'ok', s}
