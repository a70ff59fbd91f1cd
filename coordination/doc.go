// Package coordination is meta-coordination between dependent tasks (SPEC
// section 7): it finds tasks in different repositories that likely depend
// on each other, opens a coordination session among the agents concerned,
// proposes a plan (from a model, or a template when none answers), lets
// the participants agree or object over the HMMM topic
// (gossip.TopicMetaDiscussion), and resolves the session on consensus or
// escalates it to humans.
//
// Parts:
//   - Detector: the four built-in rules (BuiltinRules: api_contract,
//     database_schema, configuration, security) plus custom ones, matched
//     as words of the lower-cased title and description (see Rule for the
//     exact matching: whole words, or prefixes for keywords ending in "*",
//     so "rapid" is not "api" and "author" is not "auth"). Only pairs of
//     tasks in different repositories (compared case-insensitively) are
//     reported, each pair at most once per rule, with confidence 0.8 unless
//     a custom rule says otherwise, in an order that depends only on the
//     tasks, never on the order they are given in.
//   - Table: the sessions, a pure state machine with an injected clock (no
//     goroutines, no I/O). Its rules are in Table.Add; in short: at most
//     Limits.MaxParticipants (5) participants, refused naming the field;
//     resolved when the distinct participants that agreed among the last
//     ConsensusWindow (3) messages number at least participants − 1 (so a
//     single-participant session resolves on its first message, and with
//     the default window a session of 5 can never reach consensus: it
//     needs 4 agreements in 3 messages, and goes to humans); escalated at
//     MaxMessages (10) messages, or at OpenedAt + MaxDuration (30 min),
//     exactly at the boundary; consensus on the tenth message wins.
//     Cleanup, run every 10 min, escalates what is overdue and forgets
//     closed sessions that closed at least one interval before.
//   - Planner: asks each configured model in turn for a JSON plan (the
//     prompt, Prompt, names the tasks, their repositories and the
//     dependencies with rule and reason); when there is no model, or none
//     answers usefully within its timeout, the plan is the template: its
//     text starts with TemplateMarker and Plan.Template is set, and the
//     flag travels in the proposal and the outcome.
//   - Store: escalations and closed sessions in <dir>/coordination.json,
//     rewritten atomically (temporary file, fsync, rename, directory
//     fsync), so a restart loses nothing; Store.Handler serves
//     GET /api/v1/escalations.
//   - Driver: the protocol over gossip, described below.
//
// Protocol (every message carries the session id as the envelope's
// thread_id, hop_count 0):
//
//  1. The admin (Config.IsAdmin) lists the unfinished tasks every
//     ScanInterval and runs the Detector. For each pair of tasks with
//     alerts and no session yet (open in memory or closed in the Store), it
//     publishes each dependency_alert and opens a session (Driver.Open):
//     coordination_request with the participants: the admin's agent first,
//     then for each task the agent holding it (its assignee) or, when
//     nobody holds it, the first known agent (Roster, by id) of the task's
//     role (any role when the task names none).
//  2. The admin proposes the plan: meta_discussion of kind proposal with
//     the plan text, the proposed order of the task keys and the template
//     flag (audit plan_proposed).
//  3. Every participant other than the proposer answers each proposal once
//     (Judge): objection when its agent is already working on a task that
//     the order puts after an unfinished one, agreement otherwise (audit
//     collaboration or objection_raised). An objection makes the admin
//     propose a revised plan that lists the objections.
//  4. Every node mirrors the sessions it hears of in its own Table; the
//     owner's Table decides. On consensus the owner publishes
//     coordination_complete (resolved; audit consensus_reached); at 10
//     messages or 30 min it publishes escalation_trigger (requires_human)
//     and coordination_complete (escalated; audit escalation). Every node
//     stores the escalations and outcomes it hears, so any worker's
//     GET /api/v1/escalations shows them.
//  5. Messages published before the gossip mesh forms are lost, so every
//     TickInterval the owner sends the alerts, the request and the current
//     proposal again while a participant has said nothing since it;
//     messages carry ids, a re-sent copy is not counted twice, and a
//     participant that hears a proposal again repeats its answer. A
//     message for a session the owner has closed makes it repeat the
//     outcome.
//  6. A session message signed by a peer other than the one the Roster
//     knows for its agent, and an outcome (coordination_complete,
//     escalation_trigger) of a mirrored session not sent by the peer that
//     sent its request, are ignored. Agents the Roster does not know, and
//     escalations of sessions never heard of, cannot be checked and are
//     taken as they come.
//
// Not done here: a resolved plan is advice recorded in the sessions, the
// audit log and the store; the task workflows do not wait on it.
//
// Concurrency: Table is not safe for concurrent use; the Driver guards its
// Table and bookkeeping with one mutex and never holds it while publishing,
// planning or calling the Store, Auditor or TaskLister. Detector, Planner
// and Store are safe for concurrent use. Driver.Run owns the tickers and
// the subscription; plan revisions run on goroutines that Run waits for
// before it returns.
package coordination
