// Package gitea is the gitea task provider (SPEC section 2): issues of the
// configured repositories on a Gitea server that carry the task label
// (default chorus-task) are tasks. Tracker implements activities.Tracker
// (claim with a fencing token, release, start, complete, fail, cancel),
// ListOpen for intake and Get; Webhook is the handler for POST
// /webhooks/gitea. It speaks Gitea's REST API (/api/v1) with net/http only;
// giteatest is a fake of the endpoints it uses.
//
// The label conventions, the claim protocol and the completion are the
// github provider's (see its package documentation and the forge package):
// chorus-task, in-progress, completed, failed; priority:N, role:R,
// expertise:X, type:T, project:P, model:M; "depends on #N" in the body
// gives task/gitea/<repo>/<n>. A claim is a comment verified by reading the
// comments again, the earliest claim since the task was last open wins and
// its comment ID is the fence; Complete posts the result comment, swaps
// in-progress for completed and closes the issue.
//
// Gitea specifics: Config.BaseURL is the server (there is no default) and
// the API is below /api/v1; the token is sent as "Authorization: token
// <token>". Issue labels are added and removed by ID, so the IDs of the
// labels chorus uses are looked up once per repository (and the labels
// created, colour #ededed, when missing). Assignees are set with PATCH on
// the issue, which replaces the list, so the current list is read first.
// Lists use page and limit (50, Gitea's MAX_RESPONSE_ITEMS) and follow the
// Link header, or X-Total-Count without one. A 429 waits for Retry-After,
// else X-RateLimit-Reset, else 5 s, within Retry.MaxWait; 5xx are retried
// on requests that cannot do anything twice. Errors carry Gitea's message
// and url; 404 wraps chorus.ErrNotFound, 422 chorus.ErrInvalid.
//
// Webhook verifies X-Gitea-Signature (hex HMAC-SHA256 of the raw body,
// constant-time; 401 otherwise), bounds the body, and for an "issues"
// delivery (X-Gitea-Event; Gitea sends label changes as "issues" with
// action label_updated and X-Gitea-Event-Type issue_label) with action
// opened, reopened or label_updated of a configured repository whose issue
// is startable calls the start function (202); anything else is 204.
//
// Concurrency: a Tracker and its webhook handler are safe for concurrent
// use; the label-ID cache is guarded by a mutex.
package gitea
