package redisstore

// Redis key layout. Every key starts with the hash tag "{prefix}", so all of
// them map to one Cluster slot and a script may touch any of them without
// CROSSSLOT errors. Lua never builds a key name: each is built here and
// passed in KEYS.
//
//	{p}:epoch          STRING  the store epoch ("<generation>.<random hex>")
//	{p}:b:<window>     HASH    one budget window: spent, rsv (sum of live
//	                           holds), limit/enf/scope (as of the last
//	                           reserve that changed them), pr (when its
//	                           expired holds may next be pruned, ms)
//	{p}:z:<window>     ZSET    live holds scored by lease end (ms), each
//	                           "<request id>|<amount>|<1 if this is the
//	                           hold's first budget, else 0>"
//	{p}:hold:<id>      HASH    one hold: amt, state (live, orphaned,
//	                           settled), exp, keys (window keys, "\n"-joined)
//	{p}:adj:<op>       STRING  marks an Adjust as applied (go-redis retries)
//	{p}:note:<name>    STRING  a claimed notification, value = expiry (ms)
//	{p}:lock:<name>    STRING  a lease lock, value = "<owner>|<expiry ms>"
//	{p}:rec:<kind>     HASH    small durable records, id -> bytes
//	{p}:led:<hour>     HASH    the spend ledger of one UTC hour
//	                           ("2026120719"), see ledger.lua
//
// <window> is Budget.Key(now), e.g. "service:search:daily:20261127".
type keyspace struct{ tag string }

func newKeyspace(prefix string) keyspace { return keyspace{tag: "{" + prefix + "}"} }

func (k keyspace) epoch() string                { return k.tag + ":epoch" }
func (k keyspace) window(window string) string  { return k.tag + ":b:" + window }
func (k keyspace) holdSet(window string) string { return k.tag + ":z:" + window }
func (k keyspace) hold(requestID string) string { return k.tag + ":hold:" + requestID }
func (k keyspace) adjustOp(op string) string    { return k.tag + ":adj:" + op }
func (k keyspace) note(name string) string      { return k.tag + ":note:" + name }
func (k keyspace) lock(name string) string      { return k.tag + ":lock:" + name }
func (k keyspace) records(kind string) string   { return k.tag + ":rec:" + kind }
func (k keyspace) ledger(hour string) string    { return k.tag + ":led:" + hour }

// scriptKeys returns KEYS for a script that touches the epoch, optionally
// one hold record, and a (hash, zset) pair per window key, in that order.
func (k keyspace) scriptKeys(holdID string, windows []string) []string {
	keys := make([]string, 0, 2+2*len(windows))
	keys = append(keys, k.epoch())
	if holdID != "" {
		keys = append(keys, k.hold(holdID))
	}
	for _, w := range windows {
		keys = append(keys, k.window(w), k.holdSet(w))
	}
	return keys
}
