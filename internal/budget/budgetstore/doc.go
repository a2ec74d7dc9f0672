// Package budgetstore implements budget.Store on an embedded bbolt file,
// for a gateway that runs as one replica, with the semantics of the Redis
// store (package redisstore) exactly: both run the conformance suite of
// package storetest. It also runs the grant step of package grant, in one
// bbolt transaction, and keeps the records, claims and locks other
// packages store beside the budgets.
package budgetstore
