-- settle.lua replaces holds by their actual cost, once per request ID. One
-- call settles one request or several: concurrent settlements share a call
-- (see settleBatcher), so its fixed cost (a round trip, script setup) is
-- paid once for all of them. Requests are settled one after another; a
-- request ID twice in one call is settled once, the second gets "dup".
--
-- KEYS[1]        epoch
-- then per request j, in order: its hold record, then the window hash and
--                hold zset of each of its n_j windows, then its h_j ledger
--                hour hashes
-- ARGV[1]        epoch the caller trusts
-- ARGV[2]        TTL of the settled marker, ms
-- ARGV[3]        m, the number of requests
-- then per request j, in order:
--                request ID;
--                actual cost, nano-USD (>= 0; "0" when releasing);
--                the n_j window keys joined by "\n";
--                "settle", or "release" for a reserve whose reply was lost
--                (the request was not forwarded on that reservation);
--                n_j;
--                n_j TTLs in s, one per window, used if this call creates
--                the window ("0" = never expires);
--                h_j;
--                its ledger lines (see ledger.lua), added when the request
--                is charged (never on "dup" or "keys")
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
-- Returns {"reset", stored_epoch} (nothing changed), or {"many", reply_1,
-- ..., reply_m}, each reply one of
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

-- settle_one settles the request whose hold record is KEYS[at], with its n
-- windows' hash and zset at KEYS[at + 2i - 1] and KEYS[at + 2i].
local function settle_one(at, n, id, actual, joined, release, ttls, la)
  local hold = KEYS[at]
  local rec = redis.call('HMGET', hold, 'state', 'amt', 'keys')
  local state, est = rec[1], rec[2] or '0'
  if state == 'settled' or (release and state == 'released') then return {'dup'} end
  if state == 'released' then state = false end -- nothing held or charged: as unknown
  if state and rec[3] ~= joined then return {'keys', rec[3] or ''} end

  local out = {'ok'}
  for i = 1, n do
    local b, z = KEYS[at + 2 * i - 1], KEYS[at + 2 * i]
    local v = redis.call('HMGET', b, 'spent', 'rsv', 'limit', 'enf', 'scope')
    local removed = '0'
    if state then
      if redis.call('ZREM', z, member(id, est, i)) == 1 then
        -- The hold was live on this window: take it off.
        incr(b, 'rsv', negate(est))
      else
        -- Pruned as an orphan, and charged its estimate: correct that.
        incr(b, 'spent', negate(est))
      end
      incr(b, 'spent', actual)
      removed = est
    else
      incr(b, 'spent', actual)
      local ttl = tonumber(ttls[i])
      if ttl > 0 and redis.call('TTL', b) == -1 then redis.call('EXPIRE', b, ttl) end
    end
    out[#out + 1] = v[1] or '0'
    out[#out + 1] = v[2] or '0'
    out[#out + 1] = removed
    out[#out + 1] = v[3] or ''
    out[#out + 1] = v[4] or ''
    out[#out + 1] = v[5] or ''
  end
  ledger_add(at + 2 * n, la)
  local final = 'settled'
  if release then final = 'released' end
  redis.call('HSET', hold, 'state', final, 'actual', actual)
  redis.call('PEXPIRE', hold, ARGV[2])
  return out
end

local out = {'many'}
local k, a = 2, 4
for j = 1, tonumber(ARGV[3]) do
  local id, actual, joined, mode, n = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  local ttls = {}
  for i = 1, n do ttls[i] = ARGV[a + 4 + i] end
  local h = tonumber(ARGV[a + 5 + n])
  out[#out + 1] = settle_one(k, n, id, actual, joined, mode == 'release', ttls, a + 6 + n)
  k = k + 1 + 2 * n + h
  a = ledger_skip(a + 6 + n)
end
return out
