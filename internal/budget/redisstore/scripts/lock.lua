-- lock.lua takes or renews a lease lock.
--
-- KEYS[1]        lock key
-- ARGV[1]        owner token (one per store instance)
-- ARGV[2]        now, unix ms (the caller's injected clock)
-- ARGV[3]        lease end, unix ms
-- ARGV[4]        key TTL, ms (garbage collection only)
--
-- Returns 1 when ARGV[1] now holds the lock until ARGV[3], 0 when another
-- owner's lease is still live.

local v = redis.call('GET', KEYS[1])
if v then
  local owner, exp = string.match(v, '^(.*)|(%d+)$')
  if owner ~= ARGV[1] and exp and tonumber(exp) > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[3], 'PX', ARGV[4])
return 1
