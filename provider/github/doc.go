// Package github is the github task provider (SPEC section 2): issues of
// the configured repositories that carry the task label (default
// chorus-task) are tasks. Tracker implements activities.Tracker (claim
// with a fencing token, release, start, complete, fail, cancel), ListOpen
// for intake and Get; Webhook is the handler for POST /webhooks/github.
// It speaks GitHub's REST API with net/http only (no SDK); githubtest is
// a fake of the endpoints it uses.
//
// # Label conventions
//
//	chorus-task       the issue is a task (Config.Label)
//	in-progress       claimed by an agent; set by chorus
//	completed         done (the issue is closed as completed); set by chorus
//	failed            failed, left open and unassigned for a human; set by chorus
//	priority:N        priority 0..10 (default 0; a malformed value is ignored)
//	role:R            the required agent role
//	expertise:X       required expertise; one label per item
//	type:T            the task type; default chorus.DetectTaskType of title and body
//	project:P         the project id
//	model:M           the model the AI rung tries first
//
// Dependencies come from the body: "depends on #12", "blocked by #3, #4
// and acme/web#9" give the task keys task/github/<repo>/<n>. The issue body
// is the task's description (its ```sh block is the scripted rung). A task
// never opens the sandbox's network from an issue: allow-lists are a board
// feature. The task label is the trust gate: on GitHub only collaborators
// with triage access can label issues.
//
// # Claim and completion
//
// A claim is a comment carrying the agent, verified by reading the
// comments again: the earliest claim since the task was last open wins,
// and the winner's comment ID is the fencing token (see the forge package
// for the protocol). The winner is then assigned (Config.Assignee, default
// the token's own user) and labelled in-progress. A racing loser deletes
// its comment and gets chorus.ErrAlreadyClaimed. Start posts a "started"
// comment. Complete posts the result comment (outcome, execution type,
// duration, exit code, message, output tail; free text through
// Config.Redact), swaps in-progress for completed and closes the issue
// with state_reason completed; repeating it posts nothing. Fail posts the
// reason and labels the issue failed; Cancel closes it as not_planned.
// Closing an issue by hand reads as cancelled and fences the holder out.
//
// # REST
//
// Requests carry "Authorization: Bearer <token>", Accept
// application/vnd.github+json and X-GitHub-Api-Version 2022-11-28. Lists
// follow the Link header's rel="next" (per_page 100); a next link to
// another host is refused, so the token never leaves the API host. A 403
// or 429 with x-ratelimit-remaining: 0 waits until x-ratelimit-reset, one
// with retry-after waits that long, one without either (a secondary limit)
// waits a minute; a wait longer than Retry.MaxWait fails at once with the
// reset time instead of holding an activity. 5xx and transport errors are
// retried with jittered backoff on requests that cannot do anything twice
// (never on posting a comment: a lost answer is found by re-reading).
// Every wait honours ctx. Errors name the operation, repository and issue
// and carry GitHub's message and documentation_url; 404 wraps
// chorus.ErrNotFound, 422 chorus.ErrInvalid.
//
// The token comes from an environment variable or a file (never a flag or
// the config file); it is kept in a value that prints as [REDACTED] and is
// scrubbed from every error message.
//
// # Webhooks
//
// Webhook verifies X-Hub-Signature-256 (HMAC-SHA256 of the raw body under
// the webhook secret, constant-time; missing or wrong: 401), bounds the
// body (Config.MaxWebhookBody, 413 beyond), answers ping with 200, and for
// an issues delivery (opened, labeled, reopened) of a configured
// repository whose issue is startable calls the start function (202);
// anything else is 204. Polling (provider.Poller over ListOpen, every
// PollInterval) is the fallback for lost deliveries; the start function is
// idempotent per task, so both may find the same issue.
//
// Concurrency: a Tracker and its webhook handler are safe for concurrent
// use.
package github
