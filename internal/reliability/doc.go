// Package reliability holds clade-gateway's reliability and security suite.
// It has no code of its own: its tests run the real gateway (in
// process, or as the built binary for the crash and signal cases) against
// real redis-server processes and the fake Anthropic upstream on loopback,
// inject one fault per test, assert what the gateway must do, and record a
// row of figures. TestMain prints the rows as one table after the run.
//
//	make reliability   # go test -count=1 -v -run TestReliability ./internal/reliability/
//
// Rows run per-request holds (CLADE_GRANT_WINDOW=0): they test what a
// fault does to a reserve's round trip. Rows 1g, 2c and 5g run admission
// grants, the default, with Redis; rows 2e, 5e and 7e run the embedded
// store as it ships (with grants) and restart a process on the data dir
// its predecessor left after a SIGKILL or a SIGTERM.
//
// Rows 9a-9d send requests whose bill their body does not bound (content
// referenced by URL, file id or base64 media; fallback and advisor models;
// unknown tool types; impossible usage from the upstream) against a fake
// upstream that bills what the API would, and report refusals before the
// upstream and the final spend against the cap and ground truth.
//
// Every scenario is bounded in requests and time. Figures per row:
//
//   - unmetered: requests the fake upstream answered that the gateway never
//     charged (upstream Messages count minus spend-log records);
//   - drift: the budget store's spent minus what it should hold, in nano-USD:
//     ground truth (complete responses times their exact price) plus, for
//     interrupted requests, the documented charging rule;
//   - double charges: request IDs charged more than once;
//   - leaks: occurrences of the canary key and tokens (raw or base64) in
//     logs, spend logs, /metrics and error bodies;
//   - recovery: how long after the fault ended the gateway served again.
//
// Rows 8a-8e probe the request edges rather than the store: stalled and
// trickling bodies, oversized batch bodies, header-spelling and trailer
// smuggling, cross-service file and batch access, and admin adjustments
// past the spend bound. Their faults column carries the figures that
// matter there (bodies cut, refusals, requests that reached the upstream).
package reliability
