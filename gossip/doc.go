// Package gossip is how agents talk to each other (SPEC section 5). For now
// it holds only the vocabulary: topic names, the 31 message types and the
// topic each one lives on, the Envelope every message travels in, and the
// checks that decide whether a received message is accepted. The libp2p
// network itself (host, GossipSub, DHT, mDNS, signing, the topic validator
// that calls Decode) comes in a later issue; it will live in this package,
// which will then be the only one importing libp2p.
//
// Wire format: an Envelope is one JSON object (snake_case keys) whose data
// field holds the typed body of the message, itself a JSON object.
//
// Invariants: Decode is the only way a received message becomes an
// Envelope, and it accepts only messages that are
//   - at most MaxMessageBytes (1 MiB) long, valid UTF-8 and a single JSON
//     object with no unknown fields, of version Version, naming a sender,
//     with a known priority (or none) and data that is absent or an object;
//   - of one of the 31 known message types;
//   - stamped no more than MaxAge (5 min) before and MaxClockSkew (30 s)
//     after the receiver's clock;
//   - forwarded at most MaxHops (3) times.
//
// Anything else is refused with a *RejectError whose Reason (malformed,
// oversized, unknown_type, stale, over_hop) is meant for counting. An
// accepted Envelope is normalised (UTC timestamp, compact data, nil for
// empty lists) so that Decode(Encode(e)) == e. Encode refuses envelopes that
// Decode would reject for their content; freshness is the receiver's
// judgement and is not checked on the way out. Decode never panics, whatever
// the input (see FuzzDecode).
//
// Concurrency: the package has no state; every function is safe to call
// from any goroutine and every type is a plain value.
package gossip
