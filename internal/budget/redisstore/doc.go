// Package redisstore implements budget.Store on Redis (standalone,
// Sentinel or Cluster), shared by every replica: each reserve and each
// settle is one call of a Lua script (scripts/, embedded), atomic and
// retry-safe. It also runs the grant step of package grant (grant.lua),
// and keeps the records, claims and locks other packages store beside the
// budgets. The store epoch (package epoch) and the store metrics (package
// storemetrics) are shared with the embedded store (package boltstore),
// which keeps the same semantics; both run the conformance suite of
// package storetest.
//
// # Clock
//
// Windows, lease ends and lock expiry follow the Clock option, which the
// Go code reads and passes to each Lua script as an argument; scripts
// never call Redis TIME. Tests can therefore drive time, and replicas' clock skew
// (milliseconds under NTP) only moves a lease end or a window boundary by
// that much. Redis key TTLs are only garbage collection, computed as
// durations on the same clock.
//
// # Holds, orphans and settlement
//
// A hold sits in every window it reserved against: in the window's zset
// (scored by lease end) and as a field of the window's hash, whose "rsv"
// field sums live holds. Whenever a script reads a window it first charges
// the window's expired holds into "spent" at their estimate (they become
// orphans), so spent + rsv is always what admission compares with the
// limit, and a dead replica's holds stop pinning budget when their lease
// ends. Settle is idempotent per request ID through the hold record, which
// after settlement is the settled marker, kept 8 days: within them a late
// settlement of an orphan corrects the charge to the actual cost exactly;
// after them it counts as an unknown hold and is charged in full.
//
// Amounts are int64 nano-USD. Lua numbers are doubles, so scripts never add
// amounts themselves: HINCRBY does the arithmetic and comparisons split
// values at 1e9, which keeps caps exact up to int64 range.
//
// # Fitted holds
//
// A Hold with a Fit that does not fit at its Amount is placed, in the same
// script call, at Fit.Fixed + k × Fit.PerUnit for the largest k the
// tightest enforced budget's room takes (see budget.Fit). The script
// works the room out in doubles from the halves split at 1e9 (exact below
// 2^53 nano-USD, which Fit.Validate keeps every fitted amount under) and
// checks the amount it picked with the exact comparison before placing
// it, so a fitted hold never passes a limit either. Under grants the exact
// path fits: a grant that cannot grow sends requests there.
//
// # Redis layout and capacity
//
// Every key carries one hash tag, "{" + the Prefix option + "}" (see
// keys.go), so each script's keys share one Cluster slot and no call can
// fail with CROSSSLOT. The price is that all budget traffic of one prefix
// lands on one shard: Cluster adds availability, not budget throughput. A
// reserve or a settle is one script call (one round trip) of a few dozen
// O(1) or O(log n) commands per budget; a shard runs roughly tens of
// thousands of such calls per second (measured: 39µs of Redis CPU per call
// with three budgets, about 25,000 calls or 12,000 requests per second),
// which bounds the fleet's admitted requests per second per prefix.
// Deployments that need more can split prefixes (e.g. per workspace) so
// that their budgets never share a hold.
//
// Redis 6.2 or later is required (ZADD GT, HSET with several fields), with
// maxmemory-policy noeviction: any other policy may silently drop window
// keys, which would undercount spend (New logs an error if it sees
// one). Persistence (AOF) is strongly advised; without it a restart is a
// data loss that the epoch turns into ErrStoreReset. On Sentinel or
// Cluster, a failover can lose the last writes acknowledged by the old
// primary (replication is asynchronous), so spend can move back by what
// those writes held; that loss is not detected.
//
// # Grants
//
// The grant step (grant.go) is one grant.lua call, by the contract of
// grant.Backend; to everything else a grant is an ordinary hold (pruned,
// counted, charged as an orphan when its lease ends).
//
// # Store loss
//
// See package epoch: a store that lost its data fails every call with
// ErrStoreReset until an operator calls Reinit.
package redisstore
