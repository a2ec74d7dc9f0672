// Package storeopts holds the options every budget store takes, Redis or
// embedded: the clock, the bound on each call, the default lease, the
// store epoch to expect, the ledger's retention, and where metrics and
// logs go.
package storeopts
