-- ledger.lua is appended to lib.lua for the scripts that charge spend
-- (settle, grant); it never runs on its own.
--
-- The spend ledger keeps one hash per UTC hour, fields
-- "<workspace>|<key>|<model>|<component>|t" (tokens) and "...|n"
-- (nano-USD). A script adds a settlement's lines in the same call, and only
-- on the path that charges the budgets, so the ledger is charged exactly
-- once per settlement, as the budgets are.
--
-- Lines are read from ARGV[a]: L, then L lines of five values each:
--   index of the line's hour hash among the ledger keys (1-based, counted
--   from KEYS[kbase + 1]); field; tokens; nano-USD; TTL of the hash in s,
--   set when the hash has none (the ledger's retention from that hour).

-- ledger_skip returns the ARGV index after the lines at a.
local function ledger_skip(a)
  return a + 1 + 5 * tonumber(ARGV[a])
end

-- ledger_add adds the lines at ARGV[a], with hour hashes from KEYS[kbase+1].
-- A request's lines share one hour, so its hash's TTL is checked once.
local function ledger_add(kbase, a)
  local checked = {}
  for i = 0, tonumber(ARGV[a]) - 1 do
    local b = a + 1 + 5 * i
    local k = KEYS[kbase + tonumber(ARGV[b])]
    local f = ARGV[b + 1]
    incr(k, f .. '|t', ARGV[b + 2])
    incr(k, f .. '|n', ARGV[b + 3])
    if not checked[k] then
      local ttl = redis.call('TTL', k)
      if ttl == -1 then redis.call('EXPIRE', k, ARGV[b + 4]) end
      checked[k] = ttl ~= -2 -- -2: nothing added yet, check again
    end
  end
end
