-- settle.lua replaces a hold by its actual cost, once per request ID.
--
-- KEYS[1]        epoch
-- KEYS[2]        hold record of this request
-- KEYS[1+2i]     window hash of key i (i = 1..n)
-- KEYS[2+2i]     hold zset of key i
-- ARGV[1]        epoch the caller trusts
-- ARGV[2]        request ID
-- ARGV[3]        actual cost, nano-USD (>= 0; "0" when releasing)
-- ARGV[4]        TTL of the settled marker, ms
-- ARGV[5]        the n window keys joined by "\n"
-- ARGV[6]        "settle", or "release" for a reserve whose reply was lost
--                (the request was not forwarded on that reservation)
-- ARGV[6+i]      TTL in s for window i if this call creates it ("0" = never)
--
-- Per window: a hold still in the zset (even one whose lease ended unseen)
-- is removed and actual is charged; a hold already pruned as an orphan (and
-- charged its estimate) is corrected by actual - estimate; with no hold
-- record at all (a journaled replay) actual is charged. The record then
-- becomes the settled marker. A release leaves a "released" marker instead:
-- it stops the lost reserve from placing a hold later, yet a settlement of
-- the same request (forwarded without a reservation and journaled) is still
-- charged in full.
--
-- Returns one of
--   {"reset", stored_epoch}
--   {"dup"}                    already settled (or released twice): nothing
--                              changed
--   {"keys", stored_keys}      the hold was placed on other windows; call
--                              again with those
--   {"ok", then per window i: spent_before, rsv_before, spent_after,
--    rsv_after, limit, enforce, scope}

local bad = epoch_mismatch(KEYS[1], ARGV[1])
if bad then return {'reset', bad} end

local hold, id, actual, release = KEYS[2], ARGV[2], ARGV[3], ARGV[6] == 'release'
local rec = redis.call('HMGET', hold, 'state', 'amt', 'keys')
local state, est = rec[1], rec[2] or '0'
if state == 'settled' or (release and state == 'released') then return {'dup'} end
if state == 'released' then state = false end -- nothing held or charged: as unknown
if state and rec[3] ~= ARGV[5] then return {'keys', rec[3] or ''} end

local out = {'ok'}
local n = (#KEYS - 2) / 2
for i = 1, n do
  local b, z = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  local s0, r0 = level(b)
  if state and redis.call('ZSCORE', z, id) then
    local v = redis.call('HGET', b, 'h:' .. id)
    local amt = v and string.match(v, '^(%d+):')
    redis.call('ZREM', z, id)
    redis.call('HDEL', b, 'h:' .. id)
    incr(b, 'rsv', negate(amt))
    incr(b, 'spent', actual)
  elseif state then
    incr(b, 'spent', actual)
    incr(b, 'spent', negate(est))
  else
    incr(b, 'spent', actual)
    local ttl = tonumber(ARGV[6 + i])
    if ttl > 0 and redis.call('TTL', b) == -1 then redis.call('EXPIRE', b, ttl) end
  end
  local s1, r1 = level(b)
  local meta = redis.call('HMGET', b, 'limit', 'enf', 'scope')
  out[#out + 1] = s0
  out[#out + 1] = r0
  out[#out + 1] = s1
  out[#out + 1] = r1
  out[#out + 1] = meta[1] or ''
  out[#out + 1] = meta[2] or ''
  out[#out + 1] = meta[3] or ''
end
local final = 'settled'
if release then final = 'released' end
redis.call('HSET', hold, 'state', final, 'actual', actual)
redis.call('PEXPIRE', hold, ARGV[4])
return out
