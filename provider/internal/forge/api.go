package forge

import (
	"context"
	"time"
)

// Issue is what the protocol needs of an issue, in either forge's terms.
type Issue struct {
	Number    int
	Title     string
	Body      string
	Open      bool
	Labels    []string
	Assignees []string
	Author    string
	CreatedAt time.Time
	UpdatedAt time.Time
	// IsPull is set for pull requests, which are never tasks.
	IsPull bool
}

// Comment is one issue comment.
type Comment struct {
	// ID is unique across the forge and grows with creation order; the
	// ID of a winning claim comment is the claim's fencing token.
	ID        int64
	Author    string
	Body      string
	CreatedAt time.Time
}

// CloseReason says why an issue is closed (GitHub's state_reason).
type CloseReason string

// Close reasons.
const (
	ClosedCompleted  CloseReason = "completed"
	ClosedNotPlanned CloseReason = "not_planned"
)

// API is the wire format of one forge: the REST calls the claim protocol
// is made of. github and gitea each implement it over their own endpoints
// and JSON; the protocol in this package is the only consumer. It is wider
// than the house's usual one to three methods because it is the whole seam
// between the protocol and a wire format, owned on both sides by us.
//
// Every method is safe for concurrent use. Removing a label that is not on
// the issue, or unassigning a login that is not assigned, succeeds.
type API interface {
	// Login returns the login of the token's user.
	Login(ctx context.Context) (string, error)
	// Issue reads one issue (or pull request); a missing one wraps
	// chorus.ErrNotFound.
	Issue(ctx context.Context, repo string, number int) (Issue, error)
	// OpenIssues lists the open issues carrying label, every page, up to
	// limit (0 = no limit).
	OpenIssues(ctx context.Context, repo, label string, limit int) ([]Issue, error)
	// Comments lists every comment of the issue, oldest first.
	Comments(ctx context.Context, repo string, number int) ([]Comment, error)
	// Comment posts a comment. It is never resent by the transport: a
	// lost answer is found again by reading the comments.
	Comment(ctx context.Context, repo string, number int, body string) (Comment, error)
	// DeleteComment deletes a comment by ID; a missing one succeeds.
	DeleteComment(ctx context.Context, repo string, id int64) error
	AddLabels(ctx context.Context, repo string, number int, labels ...string) error
	RemoveLabel(ctx context.Context, repo string, number int, label string) error
	Assign(ctx context.Context, repo string, number int, login string) error
	Unassign(ctx context.Context, repo string, number int, login string) error
	// Close closes the issue with a reason (where the forge has one).
	Close(ctx context.Context, repo string, number int, reason CloseReason) error
}
