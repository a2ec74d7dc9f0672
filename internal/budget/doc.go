// Package budget decides whether a request may spend, and charges it.
//
// A request reserves an upper-bound estimate (a hold) against every budget
// that applies to it in one atomic step, then settles: the hold is replaced
// by the actual cost. Holds are leases that expire, so a dead replica cannot
// pin budget forever; an expired hold is charged at its estimate and counted
// as orphaned, and a late settlement corrects that charge to the actual cost.
// Committed spend only ever grows by real (or conservatively estimated) cost.
//
// Two stores share these semantics and one conformance suite: Redis (shared
// by every replica) and an embedded bbolt file (one replica).
//
// This package is the model only: budgets and their windows, holds,
// reservations, fits, ledger lines, errors and the Store contract. It
// depends on the standard library and money alone, so the policy, pricing
// and notification code that names a budget links no store client. The
// stores are in packages redisstore and boltstore, and the admission
// grants over them in package grant.
package budget
