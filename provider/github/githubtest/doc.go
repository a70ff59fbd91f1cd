// Package githubtest is an in-memory GitHub REST API for tests: the subset
// of endpoints the github provider uses, at their real paths, with their
// JSON field names, status codes, headers (x-ratelimit-*, Link pagination,
// x-github-request-id) and error bodies ({"message", "documentation_url"}),
// as GitHub's REST documentation describes them
// (https://docs.github.com/rest/issues).
//
// Served:
//
//	GET    /user
//	GET    /repos/{owner}/{repo}/issues              state, labels, per_page (30, max 100), page
//	GET    /repos/{owner}/{repo}/issues/{number}
//	PATCH  /repos/{owner}/{repo}/issues/{number}     state, state_reason, title, body, assignees
//	GET    /repos/{owner}/{repo}/issues/{number}/comments   per_page, page
//	POST   /repos/{owner}/{repo}/issues/{number}/comments   201
//	DELETE /repos/{owner}/{repo}/issues/comments/{comment_id}   204
//	POST   /repos/{owner}/{repo}/issues/{number}/labels     creates missing labels, as GitHub does
//	DELETE /repos/{owner}/{repo}/issues/{number}/labels/{name}  404 "Label does not exist" when absent
//	POST   /repos/{owner}/{repo}/issues/{number}/assignees  201
//	DELETE /repos/{owner}/{repo}/issues/{number}/assignees
//
// A request without a token is 401 "Requires authentication"; an unknown
// token 401 "Bad credentials". Inject queues failures: a primary rate limit
// (403, x-ratelimit-remaining: 0, x-ratelimit-reset), a secondary one (403
// with retry-after), 429, 5xx, 404, 422. Interleave holds matching comment
// writes until several claimers have written, so a claim conflict really
// happens. Deliver sends a signed "issues" webhook delivery built from the
// stored issue.
//
// Concurrency: a Server is safe for concurrent use.
package githubtest
