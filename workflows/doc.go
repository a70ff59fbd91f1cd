// Package workflows holds the task workflow: the durable life of one task
// from claim to completion (SPEC section 3), as deterministic Temporal
// workflow code.
//
// The workflow ID is the task key, so one task never has two live runs. The
// steps are: identify an agent (whichever worker picks the activity up
// takes the task), claim on the provider (atomic, fenced), mark working,
// execute on the agent's own task queue with heartbeats, and complete (or
// fail) on the provider. If the agent never picks the execution up, the
// claim is released and the task is placed again.
//
// Invariants: no I/O, clocks or goroutines here — only workflow.* calls;
// every activity has a StartToClose timeout and a retry policy set in
// policy.go; permanent failures come back as application errors typed with
// activities.ErrType*; behaviour changes go behind workflow.GetVersion and
// recorded histories in testdata/ must keep replaying.
package workflows
