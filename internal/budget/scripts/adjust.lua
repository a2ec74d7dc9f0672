-- adjust.lua adds a signed amount to one window's spend, once per op ID.
--
-- KEYS[1]        epoch
-- KEYS[2]        window hash
-- KEYS[3]        marker of this operation (so a retried call applies once)
-- ARGV[1]        epoch the caller trusts
-- ARGV[2]        delta, nano-USD (may be negative)
-- ARGV[3]        window TTL in s ("0" = never expires)
-- ARGV[4]        marker TTL in s
--
-- Returns {"reset", stored_epoch} or {"ok", spent_after}

local bad = epoch_mismatch(KEYS[1], ARGV[1])
if bad then return {'reset', bad} end

if redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[4]) then
  incr(KEYS[2], 'spent', ARGV[2])
  local ttl = tonumber(ARGV[3])
  if ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
end
local s = level(KEYS[2])
return {'ok', s}
