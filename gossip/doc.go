// Package gossip is how agents talk to each other (SPEC section 5). It
// holds the vocabulary (topic names, the 31 message types of the SPEC and
// the three of BACKBEAT, the topic each one lives on, the typed Body of
// each (NewBody), the Envelope every message travels in, and the checks
// that decide whether a received message is accepted) and the network: a
// Node is a libp2p host (TCP and QUIC, Noise, a connection manager, an
// identity key persisted in <DataDir>/p2p/identity.key, bootstrap peers,
// optional mDNS and a Kademlia DHT in auto, client or server mode, used by
// FindPeer) running GossipSub with strict signing. It is the only package of
// the module that imports libp2p.
//
// Network invariants:
//   - Every joined topic has a validator that runs Decode and decodes the
//     data into the type's Body (strictly, then Body.Validate), then
//     refuses an envelope whose from is not the peer that signed it and ignores this
//     node's own messages echoed back; each refusal is counted by reason
//     (Node.Rejections) and no refused message reaches a handler.
//   - Handlers receive only messages published by other nodes.
//   - Message ids are a hash of topic and data, so identical bytes on one
//     topic are one message for the seen-cache lifetime (2 min); Publish
//     stamps a nanosecond timestamp, so distinct publishes differ.
//   - A message published before the topic's mesh has formed is lost
//     silently: call WaitMesh first. Messages dropped on full queues are
//     counted (Node.Drops).
//   - mDNS discoveries are dialled only by the peer with the smaller id,
//     because mutual TCP dials fail by simultaneous open.
//   - The DHT is private: it speaks /chorus/kad/1.0.0, never the public
//     /ipfs/kad/1.0.0, and is seeded only from Config.Bootstrap, so it
//     never joins the public IPFS network. Its lookups dial the peers they
//     query, so a node with the DHT on ends up connected to more peers than
//     it was told about.
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
// Operations: with Config.Metrics the node serves chorus_p2p_*,
// chorus_dht_* and chorus_pubsub_* metrics (metrics.go; topic labels are
// topic classes, so they stay bounded); ProbePubSub and ProbeDHT are the
// health probes (probe.go, dht_probe.go: what each proves is documented
// there).
//
// Concurrency: the vocabulary has no state; its functions are safe to call
// from any goroutine and its types are plain values. Node, Topic and
// Registry are safe for concurrent use (each guards its fields with one
// mutex); a Subscribe handler runs on one goroutine per subscription, so a
// slow handler delays only its own subscription (and, past
// SubscriptionBuffer messages, makes it drop).
package gossip
