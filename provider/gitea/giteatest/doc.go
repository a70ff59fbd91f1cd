// Package giteatest is an in-memory Gitea REST API (/api/v1) for tests:
// the subset of endpoints the gitea provider uses, at their real paths,
// with Gitea's JSON field names, status codes (PATCH answers 201, label
// removal 204), pagination (page, limit with MAX_RESPONSE_ITEMS 50, Link
// and X-Total-Count) and error bodies ({"message", "url"}, 404 with
// "errors"), as Gitea's swagger and source describe them.
//
// Served (under /api/v1):
//
//	GET    /user
//	GET    /repos/{owner}/{repo}/issues                  state, labels, type, page, limit
//	GET    /repos/{owner}/{repo}/issues/{index}
//	PATCH  /repos/{owner}/{repo}/issues/{index}          state, assignees, title, body -> 201
//	GET    /repos/{owner}/{repo}/issues/{index}/comments
//	POST   /repos/{owner}/{repo}/issues/{index}/comments -> 201
//	DELETE /repos/{owner}/{repo}/issues/comments/{id}    -> 204
//	POST   /repos/{owner}/{repo}/issues/{index}/labels   label IDs (or names of existing labels)
//	DELETE /repos/{owner}/{repo}/issues/{index}/labels/{id}  -> 204; unknown label 422
//	GET    /repos/{owner}/{repo}/labels                  page, limit
//	POST   /repos/{owner}/{repo}/labels                  -> 201; a taken name 409
//
// Authorization is "token <t>" (or "Bearer <t>"); none or an unknown one is
// 401. Inject queues failures: 429 with Retry-After and X-RateLimit-*,
// 5xx, 404, 422. Interleave holds matching comment writes until several
// claimers have written. Deliver sends a signed "issues" webhook delivery
// with X-Gitea-Event, X-Gitea-Event-Type and X-Gitea-Signature.
//
// Concurrency: a Server is safe for concurrent use.
package giteatest
