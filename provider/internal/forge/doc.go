// Package forge is what the github and gitea providers share: the claim
// protocol over an issue's comments (Tracker), the REST transport with
// token auth, pagination and rate-limit backoff (Transport, GetAll), the
// signed webhook handler (Hook), token loading (chorus/secret) and
// the label conventions (TaskOf). Each provider supplies an API, its wire
// format.
//
// # Claim protocol
//
// An issue's comments by chorus's own login are its log. Each carries one
// marker, an HTML comment invisible on the rendered issue:
//
//	<!-- chorus {"op":"claim","agent":"agent-a"} -->
//	<!-- chorus {"op":"start","agent":"agent-a","fence":1234} -->
//	<!-- chorus {"op":"complete","agent":"agent-a","fence":1234,"result":{...}} -->
//
// Replaying the markers in comment-ID order gives the task's state (see
// replay): the earliest claim since the task was last open wins, and the
// ID of that claim comment is the fencing token. Comment IDs are unique
// and grow with creation order on both forges, so fences only grow; a
// write naming another fence is chorus.ErrFenced.
//
// Claim reads the log, posts a claim comment, and reads the log again; it
// has won only if its comment is the earliest claim (after a second read
// ClaimSettle later, for a racing comment whose write was not yet visible).
// A loser deletes its comment and returns chorus.ErrAlreadyClaimed; its
// claim was void and stays void whatever follows, so two claimers can never
// both win. Every other transition is the same: read, check, post a marker,
// read again, keep the marker only if it took effect.
//
// Labels and the assignee are a projection of the log, set after the log
// decided (in-progress while held, completed or failed at the end, the
// issue closed when completed or cancelled); they let ListOpen work from
// one list call per repository, but correctness never depends on them.
//
// Idempotency: every operation first checks whether the log already holds
// its effect and then only redoes the projection, so a retried activity
// posts no second comment. Only comments by the token's login count, so no
// one else can claim, complete or fence a task by writing a marker.
//
// Concurrency: Tracker, Transport and Hook are safe for concurrent use.
package forge
