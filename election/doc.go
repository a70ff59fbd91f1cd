// Package election elects the cluster's admin (SPEC section 6): one node at
// a time that runs the admin duties (task intake, the BACKBEAT pulse) and
// whose term is the fencing token of its actions.
//
// It has two layers, as etcd-io/raft does. Machine is a pure state machine:
// Step takes a received message (or a manual trigger), Tick one tick of
// time, and both return the messages to send and the events that happened
// (start and stop leading, admin changed, election started, split brain,
// quorum lost). It has no goroutines, clock, randomness or I/O; its jitter
// is derived from the node id, so a scenario replays exactly (see the table
// tests). Driver runs a Machine over the gossip election topic with a real
// ticker, calls OnStartLeading and OnStopLeading, keeps the highest term on
// disk, serves a Status snapshot and a manual Trigger, and exports the
// election metrics.
//
// # Algorithm
//
// Every node is a candidate with a score in 0..1: uptime 0.30, capabilities
// 0.20, resources 0.20, network quality 0.15, experience 0.15 (Score). The
// higher score wins; a tie goes to the smaller peer id.
//
// An election for term T (one above the highest term the node has seen)
// starts on one of five triggers: heartbeat_timeout (a follower heard no
// heartbeat for Timeout, 15 s), no_admin (a new node heard no admin within
// StartupWait, 6 s), split_brain, quorum, or manual. The node sends its
// candidacy; a node that hears a candidacy for a newer term joins the
// election and sends its own, unless it hears a live admin (then the admin
// answers the candidate with a heartbeat, so a newcomer that missed the
// heartbeats learns of it at once). After Collect (0.5 s) each node votes,
// once per term, for the best candidate it has seen. A candidate with the
// votes of a majority of the members becomes admin of T: it announces
// itself (winner), heartbeats at once, twice more Resend apart and then
// every Heartbeat (5 s). Followers adopt the admin of the newest term they
// hear and endorse it after each heartbeat with a vote for it. An election
// without a winner after RoundTimeout is retried after Backoff plus jitter.
// Candidacies and votes are re-sent every Resend while an election runs,
// so lost messages (GossipSub loses what is published before its mesh
// forms, and does not keep order) cost time, not correctness.
//
// Membership: the nodes heard on the topic within MemberTTL (1 min), and
// at least as many as the node is connected to, plus itself; live members
// are those heard within Timeout. A majority of the members is the quorum.
// The admin holds a lease: when fewer than a majority endorsed it within
// Timeout minus half a Heartbeat it steps down (quorum lost), which in a
// clean partition happens before the other side times out and elects. A
// node without an admin keeps trying at heartbeat pace (its candidacies
// make it live for the others) and elects as soon as a majority is heard
// again (quorum restored). A partition longer than MemberTTL makes each
// side forget the other and elect its own admin; when it heals, split-brain
// resolution applies.
//
// Split brain, two admins seen: the one with the higher term wins and the
// other steps down at once. Of one term, the higher score wins, then the
// smaller peer id; the loser follows the winner, and the winner starts a
// split_brain election, since two admins of one term cannot be told apart
// by their fencing tokens.
//
// A manual election (Trigger, starter election trigger) is voluntary: it is
// refused within the stability window (Stability, 30 s after the admin took
// its term) and while an election runs. A dead admin is replaced whatever
// the window. Manual and split-brain candidacies carry override: every node
// joins them, and the current admin steps down as soon as it takes part, so
// the winner never overlaps with it. A better node joining later does not
// take over by itself.
//
// # Invariants
//
//   - A node's term never decreases; a node leads only a term it won with
//     the votes of a majority of the members it knows, and votes at most
//     once per term, so a term has one admin unless two nodes disagree
//     about the membership (a partition longer than MemberTTL).
//   - A node never leads two terms at once: OnStopLeading(old) precedes
//     OnStartLeading(new).
//   - A deposed admin stops on the first heartbeat or winner of a newer
//     term it hears (so within one heartbeat of its successor), or when its
//     lease runs out; its actions carry its term, which Fence refuses once
//     a newer term has been seen.
//   - A message whose body names another node than its signed sender is
//     ignored: a peer speaks only for itself.
//
// # Concurrency
//
// A Machine is owned by one goroutine. A Driver's Machine and callbacks run
// on the goroutine of Run; Status, Trigger and the HTTP handlers are safe
// from any goroutine (the status is an atomically swapped snapshot). Fence
// is guarded by a mutex and safe for concurrent use.
package election
