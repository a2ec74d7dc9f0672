// Package journal durably queues, in a bbolt file of its own, the
// settlements the budget store could not take and the grants that could
// not close, and replays them once the store is back. Settlement is
// idempotent per request ID and a grant's steps per step number, so a
// replay never charges twice.
package journal
