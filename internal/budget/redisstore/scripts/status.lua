-- status.lua reads budget windows after charging their expired holds.
--
-- KEYS[1]        epoch
-- KEYS[2i]       window hash of budget i (i = 1..n)
-- KEYS[1+2i]     hold zset of budget i
-- ARGV[1]        epoch the caller trusts
-- ARGV[2]        now, unix ms
--
-- Returns {"reset", stored_epoch} or
--         {"ok", orphans, spent_1, rsv_1, ..., spent_n, rsv_n}

local bad = epoch_mismatch(KEYS[1], ARGV[1])
if bad then return {'reset', bad} end

local n = (#KEYS - 1) / 2
local out = {'ok', 0}
local orphans = 0
for i = 1, n do
  local b, z = KEYS[2 * i], KEYS[1 + 2 * i]
  orphans = orphans + prune(b, z, ARGV[2])
  local s, r = level(b)
  out[#out + 1] = s
  out[#out + 1] = r
end
out[2] = orphans
return out
