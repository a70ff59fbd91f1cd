// Package licensing is KACHING (SPEC section 10): the license authority
// that issues licenses and leases their seats, and the gate through which
// a worker proves, before anything else starts, that it may run — fail
// closed.
//
// # Licenses and seats
//
// A License has an id ("lic-" and 32 hex digits; knowing it is what lets
// a node activate, so it is the license key), a tier (TierDev marks the
// licenses `worker --dev` provisions for itself), a node limit (Nodes),
// an expiry, the one cluster it is bound to, and a version. Activating
// leases a seat (1..Nodes) to a node id for AuthorityConfig.LeaseTTL
// (default 5 min); a heartbeat renews it, Deactivate releases it, and a
// lease that is not renewed expires and frees its seat. Revoke bumps the
// version and marks the license revoked: tokens of an older version are
// refused at their next heartbeat and new activations are refused.
//
// # Tokens
//
// Every activation and heartbeat returns a short-lived token (it expires
// with the lease) signed with the authority's Ed25519 key:
//
//	v1.<base64url(JSON claims)>.<base64url(Ed25519 signature of "v1.<payload>")>
//
// with the claims lid (license id), cid (cluster id), nid (node id), seat,
// ver (license version), tier, iat and exp (Unix seconds; exp is the lease
// end), lexp (license expiry) and kid (KeyID of the signing key); base64url
// has no padding. ParseToken checks format, signature, every claim's shape
// (unknown claims are refused) and kid; CheckTime and CheckBinding the time
// and the license, cluster and node. Every failure wraps ErrBadToken and
// names the part or claim at fault.
//
// # Authority
//
// An Authority keeps licenses and leases in an SQLite file (StoreFile) and
// its signing key in KeyFile (PEM PKCS#8, 0600), both under its data dir:
// a restart loses nothing and old tokens still verify. Handler serves
// POST /activate, /heartbeat, /deactivate, GET /status and, with the admin
// token (Authorization: Bearer), POST /licenses and /licenses/{id}/revoke.
// Request bodies are decoded strictly; errors are ErrorBody{error, code,
// field} naming the field at fault, with one code per sentinel error.
// The same operations are Go methods (Issue, Revoke, Status, List,
// Activate, Heartbeat, Deactivate). Client speaks the HTTP API.
//
// # Gate
//
// A Gate holds one node's license. Validate asks the authority for a seat
// (or uses a still-valid cached token); Run renews it every
// HeartbeatInterval (1 min) until its ctx ends and then releases it;
// Allowed says whether the node may take new work, and Check is the same
// as a health check. Invariants:
//   - Fail closed: before a first successful validation Allowed fails. An
//     unreachable authority at start is an error unless a successful
//     validation lies within the grace period (default 24 h).
//   - Only a failure to reach the authority (network, 5xx, open breaker)
//     is covered by the grace; a refusal (unknown, revoked, expired, wrong
//     cluster, no free seat, bad token) stops new work at once and is never
//     overridden by a later outage or a restart.
//   - The grace is counted from the iat of the last verified token, a
//     signed time, not from anything the node could edit. The license's
//     own expiry ends the grace too.
//   - Tokens are verified with Config.PublicKey or, when it is nil, the
//     key of the first successful activation, pinned from then on.
//   - The circuit breaker opens after BreakerThreshold (5) consecutive
//     failures to reach the authority; while open no request is sent;
//     after BreakerCooldown (30 s) one half-open probe goes out, and its
//     outcome closes or re-opens it.
//   - A lost lease (expired, released) is re-activated at once; when all
//     seats are taken Allowed fails with ErrSeatsExhausted and Run keeps
//     trying.
//
// Persistence across restarts (StatePath, a JSON file written by atomic
// rename): the pinned key and the last good token. A worker restarted
// while the authority is down starts if that token verifies, is for the
// same license, cluster and node, and was issued within the grace period.
// After a refusal the token is dropped from the file, so a refused license
// cannot start on grace.
//
// Concurrency: Authority methods are safe for concurrent use (and several
// processes may share one store; seat counting happens in one IMMEDIATE
// transaction). Gate methods are safe for concurrent use: one mutex guards
// the state and is never held during a call to the authority; a second
// mutex serialises those calls, so Validate, Renew and Run's release never
// overlap.
package licensing
