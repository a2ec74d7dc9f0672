-- settle_many.lua settles several requests in one call: each exactly as
-- settle.lua would, one after another (a request ID twice in one call is
-- settled once; the second gets "dup"). Concurrent settlements share a
-- call, so the script call's own cost (a round trip, the script's setup)
-- is paid once for all of them.
--
-- KEYS[1]        epoch
-- then per request j, in order: its hold record, then the window hash and
--                hold zset of each of its n_j windows
-- ARGV[1]        epoch the caller trusts
-- ARGV[2]        TTL of the settled marker, ms
-- ARGV[3]        m, the number of requests
-- then per request j, in order: request ID, actual cost (nano-USD), the n_j
--                window keys joined by "\n", "settle" or "release", n_j,
--                then n_j TTLs in s (as settle.lua's ARGV[6+i])
--
-- Returns {"reset", stored_epoch} (nothing changed), or
--         {"many", reply_1, ..., reply_m} with settle.lua's reply for each.

local bad = epoch_mismatch(KEYS[1], ARGV[1])
if bad then return {'reset', bad} end

local out = {'many'}
local k, a = 2, 4
for j = 1, tonumber(ARGV[3]) do
  local id, actual, joined, mode, n = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  local ttls = {}
  for i = 1, n do ttls[i] = ARGV[a + 4 + i] end
  out[#out + 1] = settle_one(KEYS, k, n, id, actual, joined, mode == 'release', ttls, ARGV[2])
  k = k + 1 + 2 * n
  a = a + 5 + n
end
return out
