// Package grant lets a replica admit most requests without a store call:
// Granted wraps a store and admits from grants, holds the replica places
// per budget set ahead of demand, instead of one hold per request. Reserve
// draws a request's estimate from its grant in memory; Settle records the
// request, and the grant's next step charges the actual costs of what
// settled since, grows the grant, returns what it does not need and
// renews its lease.
//
// The store is a Backend: the exact per-request path for what a grant
// cannot serve, and the step, which the Redis store runs as grant.lua and
// the embedded store as one bbolt transaction, both by the contract
// Backend states. To everything else a grant is an ordinary hold (pruned,
// counted, charged as an orphan when its lease ends). The embedded store
// also charges, when it is opened, the grants a previous process left in
// the file.
//
// A grant that cannot close because the store is unreachable at shutdown
// goes to the settlement journal as a Closing, which CloseJournaled applies
// when the journal replays, in this process or the next.
package grant
