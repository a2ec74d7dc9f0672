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
--   {"ok", then per window i: spent_before, rsv_before, removed, limit,
--    enforce, scope}
-- where removed is what the settlement took off the window besides adding
-- actual (the live hold's amount, or the orphan's estimate): the caller
-- computes the level after as before + actual - removed, in exact int64
-- arithmetic, so the window is read only once.

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
local field = 'h:' .. id
for i = 1, n do
  local b, z = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  local v = redis.call('HMGET', b, 'spent', 'rsv', 'limit', 'enf', 'scope', field)
  local removed = '0'
  if state and v[6] then
    -- The hold is live on this window (reserve and prune add and remove
    -- the field and the zset entry together).
    removed = string.match(v[6], '^(%d+):') or '0'
    redis.call('ZREM', z, id)
    redis.call('HDEL', b, field)
    incr(b, 'rsv', negate(removed))
    incr(b, 'spent', actual)
  elseif state and redis.call('ZSCORE', z, id) then
    -- A zset entry whose window hash lost the hold (the hash expired
    -- first): nothing was held here to take off.
    redis.call('ZREM', z, id)
    incr(b, 'spent', actual)
  elseif state then
    -- Pruned as an orphan and charged its estimate: correct the charge.
    incr(b, 'spent', actual)
    incr(b, 'spent', negate(est))
    removed = est
  else
    incr(b, 'spent', actual)
    local ttl = tonumber(ARGV[6 + i])
    if ttl > 0 and redis.call('TTL', b) == -1 then redis.call('EXPIRE', b, ttl) end
  end
  out[#out + 1] = v[1] or '0'
  out[#out + 1] = v[2] or '0'
  out[#out + 1] = removed
  out[#out + 1] = v[3] or ''
  out[#out + 1] = v[4] or ''
  out[#out + 1] = v[5] or ''
end
local final = 'settled'
if release then final = 'released' end
redis.call('HSET', hold, 'state', final, 'actual', actual)
redis.call('PEXPIRE', hold, ARGV[4])
return out
