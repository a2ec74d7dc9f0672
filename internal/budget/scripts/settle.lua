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

local n = (#KEYS - 2) / 2
local ttls = {}
for i = 1, n do ttls[i] = ARGV[6 + i] end
return settle_one(KEYS, 2, n, ARGV[2], ARGV[3], ARGV[5], ARGV[6] == 'release', ttls, ARGV[4])
