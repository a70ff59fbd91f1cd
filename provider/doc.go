// Package provider puts the task providers behind one face. Router
// implements activities.Tracker by sending each call to the provider named
// in the task key (board, github, gitea), so the task workflow's provider
// activities need not know where a task came from. Poller is the polling
// half of intake for the issue trackers: every interval it lists the open
// tasks of a provider and hands each to a start function (intake.Starter's,
// which is idempotent per task: the workflow ID is the task key); webhooks
// (github.Tracker.Webhook, gitea.Tracker.Webhook) call the same function as
// issues are opened or labelled, and polling catches what a lost delivery
// missed.
//
// The providers themselves live in the sub-packages: provider/board (the
// embedded SQLite board), provider/github and provider/gitea. Every one of
// them passes provider/providertest's claim race.
//
// Invariants: a key whose provider is not routed is refused with
// chorus.ErrInvalid naming it, never sent elsewhere. A Poller never stops
// on a failed list or start: it logs and tries again next interval.
//
// Concurrency: a Router is immutable after NewRouter and safe for
// concurrent use if its trackers are. Poller.Run owns its loop until ctx is
// done; Poll may be called concurrently with it.
package provider
