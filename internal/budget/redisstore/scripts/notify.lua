-- notify.lua claims a notification once until its claim ends.
--
-- KEYS[1]        notification key
-- ARGV[1]        now, unix ms (the caller's injected clock)
-- ARGV[2]        claim end, unix ms
-- ARGV[3]        key TTL, ms (garbage collection only)
--
-- Returns 1 when this call made the claim, 0 when a claim is still live.

local v = redis.call('GET', KEYS[1])
if v and tonumber(v) and tonumber(v) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
