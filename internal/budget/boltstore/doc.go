// Package boltstore implements budget.Store on an embedded bbolt file, for
// a gateway that runs as one replica. It keeps the semantics of the Redis
// store (package redisstore) exactly, and runs the same conformance suite
// (package storetest): holds in every window they reserve against,
// expired holds charged at their estimate when a window is next read, and
// settlement idempotent per request ID for budget.SettledTTL. Every change
// is one fsync'd bbolt transaction, shared with the changes committing at
// the same moment (package boltcommit), so admitted spend survives a crash
// or a restart; expired records are collected a batch at a time by the
// transactions that place holds and step grants (tx.go describes the
// file's layout).
//
// It also runs the grant step of package grant, in one bbolt transaction
// by the rules grant.lua follows on Redis (grant.go), and charges, when it
// is opened, the grants a previous process left in the file: bbolt lets
// one process open it at a time, so their owner is gone. Beside the
// budgets it keeps the records, claims and locks other packages store.
//
// See package epoch for a file that is not the one a gateway knew (it was
// deleted or replaced): every call fails with ErrStoreReset until an
// operator calls Reinit.
package boltstore
