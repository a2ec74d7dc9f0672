-- extend.lua renews the lease of a live hold on all its windows.
--
-- KEYS[1]        epoch
-- KEYS[2]        hold record
-- KEYS[1+2i]     window hash of key i (i = 1..n)
-- KEYS[2+2i]     hold zset of key i
-- ARGV[1]        epoch the caller trusts
-- ARGV[2]        now, unix ms
-- ARGV[3]        request ID
-- ARGV[4]        new lease end, unix ms (a lease is never shortened)
-- ARGV[5]        hold record TTL from now, ms
-- ARGV[6]        the n window keys joined by "\n"
--
-- Returns one of
--   {"reset", stored_epoch}
--   {"keys", stored_keys}   the hold was placed on other windows
--   {"ok", orphans}         the lease now ends at ARGV[4] or later
--   {"gone", orphans}       no live hold: it expired (and was charged as an
--                           orphan), was settled, or never existed

local bad = epoch_mismatch(KEYS[1], ARGV[1])
if bad then return {'reset', bad} end

local hold, now, id, exp = KEYS[2], ARGV[2], ARGV[3], ARGV[4]
local rec = redis.call('HMGET', hold, 'state', 'keys', 'exp', 'amt')
if rec[1] ~= 'live' then return {'gone', 0} end
if rec[2] ~= ARGV[6] then return {'keys', rec[2] or ''} end

local n = (#KEYS - 2) / 2
local orphans = 0
for i = 1, n do
  orphans = orphans + prune(KEYS[1 + 2 * i], KEYS[2 + 2 * i], now)
end
local amt = rec[4] or '0'
local score = redis.call('ZSCORE', KEYS[4], member(id, amt, 1))
if not score or tonumber(score) <= tonumber(now) then
  redis.call('HSET', hold, 'state', 'orphaned')
  return {'gone', orphans}
end
if tonumber(exp) > tonumber(rec[3] or '0') then
  for i = 1, n do
    redis.call('ZADD', KEYS[2 + 2 * i], 'XX', 'GT', exp, member(id, amt, i))
  end
  redis.call('HSET', hold, 'exp', exp)
  redis.call('PEXPIRE', hold, ARGV[5])
end
return {'ok', orphans}
