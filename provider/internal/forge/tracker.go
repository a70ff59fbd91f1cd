package forge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"chorus"
)

// Options configure a Tracker. The provider packages fill them from their
// Config, which validates them.
type Options struct {
	// Provider is the provider name in task keys and errors.
	Provider string
	// Repositories are the "owner/name" repositories tasks come from.
	Repositories []string
	// Label marks an issue as a task; InProgressLabel, CompletedLabel and
	// FailedLabel show its state.
	Label           string
	InProgressLabel string
	CompletedLabel  string
	FailedLabel     string
	// Assignee is the login a claim assigns; empty means the token's user.
	Assignee string
	// ClaimSettle is how long a claimer that appears to have won waits
	// before reading the log once more to confirm it.
	ClaimSettle time.Duration
	// Redact is applied to every free text posted (messages, output,
	// reasons); nil posts them as they are.
	Redact func(string) string
	// Logger receives warnings about best-effort clean-ups; nil discards.
	Logger *slog.Logger
}

// Tracker is the claim protocol over one forge's API. It is safe for
// concurrent use; the only state it keeps is the token's login, learned on
// first use under a mutex.
type Tracker struct {
	api API
	opt Options

	mu    sync.Mutex
	login string
}

// NewTracker returns a Tracker over api.
func NewTracker(api API, opt Options) *Tracker {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Tracker{api: api, opt: opt}
}

// Login returns the token's login, asking the forge once.
func (t *Tracker) Login(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.login != "" {
		return t.login, nil
	}
	login, err := t.api.Login(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: read the token's user: %w", t.opt.Provider, err)
	}
	if login == "" {
		return "", fmt.Errorf("%s: read the token's user: the answer has no login", t.opt.Provider)
	}
	t.login = login
	return login, nil
}

func (t *Tracker) assignee(ctx context.Context) (string, error) {
	if t.opt.Assignee != "" {
		return t.opt.Assignee, nil
	}
	return t.Login(ctx)
}

// repo returns the configured spelling of key's repository, or an error
// naming the bad part of the key.
func (t *Tracker) repo(key chorus.TaskKey) (string, error) {
	if key.Provider != t.opt.Provider {
		return "", fmt.Errorf("%w: key: provider %q is not %q", chorus.ErrInvalid, key.Provider, t.opt.Provider)
	}
	if key.Number <= 0 {
		return "", fmt.Errorf("%w: key: number %d must be positive", chorus.ErrInvalid, key.Number)
	}
	for _, r := range t.opt.Repositories {
		if strings.EqualFold(r, key.Repository) {
			return r, nil
		}
	}
	return "", fmt.Errorf("%w: key: repository %q is not one of the configured repositories", chorus.ErrInvalid, key.Repository)
}

// wrap names the operation, repository and issue.
func (t *Tracker) wrap(op string, key chorus.TaskKey, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %s %s#%d: %w", t.opt.Provider, op, key.Repository, key.Number, err)
}

// load reads the issue and replays its comment log.
func (t *Tracker) load(ctx context.Context, repo string, number int) (Issue, view, error) {
	login, err := t.Login(ctx)
	if err != nil {
		return Issue{}, view{}, err
	}
	is, err := t.api.Issue(ctx, repo, number)
	if err != nil {
		return Issue{}, view{}, fmt.Errorf("read issue: %w", err)
	}
	if is.IsPull {
		return Issue{}, view{}, fmt.Errorf("%w: #%d is a pull request, not an issue", chorus.ErrNotFound, number)
	}
	cs, err := t.api.Comments(ctx, repo, number)
	if err != nil {
		return Issue{}, view{}, fmt.Errorf("read comments: %w", err)
	}
	return is, replay(cs, login, is.Open), nil
}

// Claim gives the task to agentID and returns the fencing token: the ID of
// the claim comment that won. See the package documentation for the rule.
// Claiming again by the agent that holds the task returns the same fence.
// A lost race is chorus.ErrAlreadyClaimed naming the holder; the loser's
// claim comment is deleted. A terminal or closed task is chorus.ErrInvalid.
func (t *Tracker) Claim(ctx context.Context, key chorus.TaskKey, agentID string) (int64, error) {
	fence, err := t.claim(ctx, key, agentID)
	return fence, t.wrap("claim", key, err)
}

func (t *Tracker) claim(ctx context.Context, key chorus.TaskKey, agentID string) (int64, error) {
	repo, err := t.repo(key)
	if err != nil {
		return 0, err
	}
	if strings.TrimSpace(agentID) == "" {
		return 0, fmt.Errorf("%w: agent_id: must not be empty", chorus.ErrInvalid)
	}
	is, v, err := t.load(ctx, repo, key.Number)
	if err != nil {
		return 0, err
	}
	if !slices.Contains(is.Labels, t.opt.Label) && v.state == chorus.StateOpen {
		return 0, fmt.Errorf("%w: labels: the issue has no %q label", chorus.ErrInvalid, t.opt.Label)
	}
	if fence, done, err := t.claimed(ctx, repo, is, v, agentID); done {
		return fence, err
	}
	c, err := t.api.Comment(ctx, repo, key.Number, claimText(agentID)+"\n\n"+marker{Op: opClaim, Agent: agentID}.encode())
	if err != nil {
		return 0, fmt.Errorf("post claim comment: %w", err)
	}
	_, v, err = t.load(ctx, repo, key.Number)
	if err == nil && v.holder == agentID && t.opt.ClaimSettle > 0 {
		// A claim comment with a smaller ID whose write the forge had
		// not finished when we read would show up now.
		if err = sleep(ctx, t.opt.ClaimSettle); err == nil {
			_, v, err = t.load(ctx, repo, key.Number)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("verify claim: %w", err)
	}
	if v.holder == agentID && v.state != chorus.StateOpen && !v.state.Terminal() {
		if err := t.project(ctx, repo, is, v); err != nil {
			return 0, err
		}
		return v.fence, nil
	}
	// Lost: our comment is void whatever comes later; take it away so
	// the issue shows one claim.
	t.deleteVoid(ctx, repo, key.Number, c.ID)
	if v.state.Terminal() {
		return 0, fmt.Errorf("%w: state: task is %s", chorus.ErrInvalid, v.state)
	}
	return 0, fmt.Errorf("%w by %q", chorus.ErrAlreadyClaimed, v.holder)
}

// claimed answers a claim from the log alone when it can: done is true
// when the task is terminal, held by someone else, or already held by
// agentID (then the fence is returned and the labels brought up to date).
func (t *Tracker) claimed(ctx context.Context, repo string, is Issue, v view, agentID string) (fence int64, done bool, err error) {
	switch {
	case v.state.Terminal():
		return 0, true, fmt.Errorf("%w: state: task is %s", chorus.ErrInvalid, v.state)
	case v.state == chorus.StateOpen:
		return 0, false, nil
	case v.holder != agentID:
		return 0, true, fmt.Errorf("%w by %q", chorus.ErrAlreadyClaimed, v.holder)
	}
	return v.fence, true, t.project(ctx, repo, is, v)
}

// Start moves the claimed task to working (a "started" comment). Starting
// again with the same fence is a no-op; a fence that is not current is
// chorus.ErrFenced.
func (t *Tracker) Start(ctx context.Context, key chorus.TaskKey, fence int64) error {
	return t.wrap("start", key, t.holderWrite(ctx, key, fence, chorus.StateWorking, func(agent string) (string, marker) {
		return fmt.Sprintf("**chorus**: agent %s started working on this task.", code(agent)),
			marker{Op: opStart, Agent: agent, Fence: fence}
	}))
}

// Release hands the task back: it becomes open and unassigned, and the
// next claim gets a higher fence. Releasing again is a no-op.
func (t *Tracker) Release(ctx context.Context, key chorus.TaskKey, fence int64) error {
	return t.wrap("release", key, t.holderWrite(ctx, key, fence, chorus.StateOpen, func(agent string) (string, marker) {
		return fmt.Sprintf("**chorus**: agent %s released this task; another agent may claim it.", code(agent)),
			marker{Op: opRelease, Agent: agent, Fence: fence}
	}))
}

// Complete posts the result comment, swaps the in-progress label for the
// completed one and closes the issue. Completing again with the same fence
// posts nothing and returns nil.
func (t *Tracker) Complete(ctx context.Context, key chorus.TaskKey, fence int64, r chorus.Result) error {
	return t.wrap("complete", key, t.holderWrite(ctx, key, fence, chorus.StateCompleted, func(agent string) (string, marker) {
		return t.resultText(agent, r), marker{Op: opComplete, Agent: agent, Fence: fence, Result: &resultMark{
			Success: r.Success, Message: truncate(t.redact(r.Message), maxMessage), ExecutionType: r.ExecutionType,
			DurationMS: r.DurationMS, ExitCode: r.ExitCode, AgentID: r.AgentID,
		}}
	}))
}

// Fail records a failure with its reason: the failed label replaces the
// in-progress one, the issue stays open and unassigned for a human. With
// fence 0 it is an operator action that fails any task not terminal and
// fences its holder out.
func (t *Tracker) Fail(ctx context.Context, key chorus.TaskKey, fence int64, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return t.wrap("fail", key, fmt.Errorf("%w: reason: must not be empty", chorus.ErrInvalid))
	}
	reason = truncate(t.redact(reason), maxMessage)
	text := fmt.Sprintf("**chorus**: this task failed.\n\n%s", quote(reason))
	if fence == 0 {
		return t.wrap("fail", key, t.operatorWrite(ctx, key, chorus.StateFailed, text, marker{Op: opFail, Reason: reason}))
	}
	return t.wrap("fail", key, t.holderWrite(ctx, key, fence, chorus.StateFailed, func(agent string) (string, marker) {
		return text, marker{Op: opFail, Agent: agent, Fence: fence, Reason: reason}
	}))
}

// Cancel ends a task that is not terminal on an operator's request: the
// issue is closed as not planned and the holder, if any, fenced out.
// Cancelling a cancelled task is a no-op; a completed or failed one is
// chorus.ErrInvalid.
func (t *Tracker) Cancel(ctx context.Context, key chorus.TaskKey, reason string) error {
	reason = truncate(t.redact(reason), maxMessage)
	text := "**chorus**: this task was cancelled."
	if reason != "" {
		text += "\n\n" + quote(reason)
	}
	return t.wrap("cancel", key, t.operatorWrite(ctx, key, chorus.StateCancelled, text, marker{Op: opCancel, Reason: reason}))
}

// holderWrite is a transition by the holder of fence: read the log; if the
// transition was already made, only bring the labels up to date; if it is
// not allowed, say why; else post its marker and read again to check that
// the marker took effect (a concurrent operator cancel may have come
// first). A marker that did not take effect is deleted.
func (t *Tracker) holderWrite(ctx context.Context, key chorus.TaskKey, fence int64, done chorus.TaskState,
	text func(agent string) (string, marker)) error {
	repo, err := t.repo(key)
	if err != nil {
		return err
	}
	if fence <= 0 {
		return fmt.Errorf("%w: fence: %d must be positive", chorus.ErrInvalid, fence)
	}
	is, v, err := t.load(ctx, repo, key.Number)
	if err != nil {
		return err
	}
	proceed, err := v.check(fence, done)
	if err != nil {
		return err
	}
	if !proceed {
		return t.project(ctx, repo, is, v)
	}
	body, m := text(v.holder)
	return t.postMarker(ctx, repo, key.Number, is, body, m, opFence{m.Op, fence}, func(v view) error {
		if _, err := v.check(fence, done); err != nil {
			return err
		}
		return fmt.Errorf("%w: the %s comment did not take effect", chorus.ErrFenced, m.Op)
	})
}

// operatorWrite moves a task that is not terminal to done without a fence.
func (t *Tracker) operatorWrite(ctx context.Context, key chorus.TaskKey, done chorus.TaskState, text string, m marker) error {
	repo, err := t.repo(key)
	if err != nil {
		return err
	}
	is, v, err := t.load(ctx, repo, key.Number)
	if err != nil {
		return err
	}
	switch {
	case v.state == done && v.fence != -1:
		return t.project(ctx, repo, is, v)
	case v.state.Terminal() && v.fence != -1:
		return fmt.Errorf("%w: state: task is %s", chorus.ErrInvalid, v.state)
	}
	return t.postMarker(ctx, repo, key.Number, is, text, m, opFence{m.Op, 0}, func(v view) error {
		return fmt.Errorf("%w: state: task is %s", chorus.ErrInvalid, v.state)
	})
}

// postMarker posts body with m, reads the log again and, when the marker
// (want) took effect, brings the labels up to date; otherwise it deletes
// the void comment and returns refused(view).
func (t *Tracker) postMarker(ctx context.Context, repo string, number int, is Issue, body string, m marker, want opFence,
	refused func(view) error) error {
	c, err := t.api.Comment(ctx, repo, number, body+"\n\n"+m.encode())
	if err != nil {
		return fmt.Errorf("post %s comment: %w", m.Op, err)
	}
	_, v, err := t.load(ctx, repo, number)
	if err != nil {
		return fmt.Errorf("verify %s: %w", m.Op, err)
	}
	if id, ok := v.effective[want]; ok {
		if id != c.ID {
			// An earlier copy (a retry whose answer was lost, or
			// another operator) took effect; ours is a void duplicate.
			t.deleteVoid(ctx, repo, number, c.ID)
		}
		return t.project(ctx, repo, is, v)
	}
	t.deleteVoid(ctx, repo, number, c.ID)
	return refused(v)
}

// deleteVoid deletes a comment whose marker is void, so the issue shows
// only what took effect. It is best effort: a void marker stays void.
func (t *Tracker) deleteVoid(ctx context.Context, repo string, number int, id int64) {
	if err := t.api.DeleteComment(ctx, repo, id); err != nil {
		t.opt.Logger.Warn("deleting a void chorus comment failed", "provider", t.opt.Provider,
			"repository", repo, "issue", number, "comment", id, "error", err)
	}
}

// project makes the issue's labels, assignee and open/closed state show
// the log's state v. is is the issue as last read; every change is
// idempotent, so acting on a slightly old read at worst repeats one.
func (t *Tracker) project(ctx context.Context, repo string, is Issue, v view) error {
	login, err := t.assignee(ctx)
	if err != nil {
		return err
	}
	has := func(l string) bool { return slices.Contains(is.Labels, l) }
	assigned := slices.Contains(is.Assignees, login)
	var errs []error
	add := func(l string) {
		if !has(l) {
			errs = append(errs, t.api.AddLabels(ctx, repo, is.Number, l))
		}
	}
	remove := func(l string) {
		if has(l) {
			errs = append(errs, t.api.RemoveLabel(ctx, repo, is.Number, l))
		}
	}
	unassign := func() {
		if assigned {
			errs = append(errs, t.api.Unassign(ctx, repo, is.Number, login))
		}
	}
	closeAs := func(r CloseReason) {
		if is.Open {
			errs = append(errs, t.api.Close(ctx, repo, is.Number, r))
		}
	}
	switch v.state {
	case chorus.StateOpen:
		remove(t.opt.InProgressLabel)
		unassign()
	case chorus.StateClaimed, chorus.StateWorking:
		if !assigned {
			errs = append(errs, t.api.Assign(ctx, repo, is.Number, login))
		}
		add(t.opt.InProgressLabel)
	case chorus.StateCompleted:
		add(t.opt.CompletedLabel)
		remove(t.opt.InProgressLabel)
		closeAs(ClosedCompleted)
	case chorus.StateFailed:
		add(t.opt.FailedLabel)
		remove(t.opt.InProgressLabel)
		unassign()
	case chorus.StateCancelled:
		remove(t.opt.InProgressLabel)
		unassign()
		closeAs(ClosedNotPlanned)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("update labels: %w", err)
	}
	return nil
}

// Get returns the task with its state, holder, fence and result as the
// comment log says.
func (t *Tracker) Get(ctx context.Context, key chorus.TaskKey) (chorus.Task, error) {
	repo, err := t.repo(key)
	if err != nil {
		return chorus.Task{}, t.wrap("get", key, err)
	}
	is, v, err := t.load(ctx, repo, key.Number)
	if err != nil {
		return chorus.Task{}, t.wrap("get", key, err)
	}
	task := t.TaskOf(repo, is)
	task.State = v.state
	if v.holder != "" {
		task.Assignee = v.holder
	}
	if v.fence > 0 {
		task.Fence = v.fence
	}
	task.Result = v.result
	if v.state == chorus.StateFailed || v.state == chorus.StateCancelled {
		task.Error = v.reason
	}
	return task, nil
}

// ListOpen lists the open, unclaimed tasks of every configured repository
// by their labels alone (the comment log is read only by Claim and Get),
// by priority (highest first), then age, then repository and number. limit
// > 0 caps the list.
func (t *Tracker) ListOpen(ctx context.Context, limit int) ([]chorus.Task, error) {
	var tasks []chorus.Task
	for _, repo := range t.opt.Repositories {
		issues, err := t.api.OpenIssues(ctx, repo, t.opt.Label, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: list open issues of %s: %w", t.opt.Provider, repo, err)
		}
		for _, is := range issues {
			if task, ok := t.Startable(repo, is); ok {
				tasks = append(tasks, task)
			}
		}
	}
	slices.SortStableFunc(tasks, func(a, b chorus.Task) int {
		return cmp.Or(cmp.Compare(b.Priority, a.Priority), a.CreatedAt.Compare(b.CreatedAt),
			cmp.Compare(a.Repository, b.Repository), cmp.Compare(a.Number, b.Number))
	})
	if limit > 0 && len(tasks) > limit {
		tasks = tasks[:limit]
	}
	return tasks, nil
}

// Startable reports whether an issue of repo is a task waiting for an
// agent (open, not a pull request, with the task label and none of the
// state labels), and maps it.
func (t *Tracker) Startable(repo string, is Issue) (chorus.Task, bool) {
	if !is.Open || is.IsPull || !slices.Contains(is.Labels, t.opt.Label) {
		return chorus.Task{}, false
	}
	for _, l := range []string{t.opt.InProgressLabel, t.opt.CompletedLabel, t.opt.FailedLabel} {
		if slices.Contains(is.Labels, l) {
			return chorus.Task{}, false
		}
	}
	task := t.TaskOf(repo, is)
	task.State = chorus.StateOpen
	return task, true
}

// Configured returns the configured spelling of repo, if it is one.
func (t *Tracker) Configured(repo string) (string, bool) {
	for _, r := range t.opt.Repositories {
		if strings.EqualFold(r, repo) {
			return r, true
		}
	}
	return "", false
}

// TaskOf maps an issue to a task by the label conventions; State is set
// from the labels (the comment log may say more, see Get).
func (t *Tracker) TaskOf(repo string, is Issue) chorus.Task {
	task := chorus.Task{
		Provider:    t.opt.Provider,
		Repository:  repo,
		Number:      is.Number,
		Title:       is.Title,
		Description: is.Body,
		Labels:      slices.Clone(is.Labels),
		CreatedAt:   is.CreatedAt,
		UpdatedAt:   is.UpdatedAt,
	}
	if len(is.Assignees) > 0 {
		task.Assignee = is.Assignees[0]
	}
	applyLabels(&task, is.Labels)
	if task.Type == "" {
		task.Type = chorus.DetectTaskType(is.Title, is.Body)
	}
	task.Dependencies = Dependencies(t.opt.Provider, repo, is.Number, is.Body)
	switch {
	case !is.Open && slices.Contains(is.Labels, t.opt.CompletedLabel):
		task.State = chorus.StateCompleted
	case !is.Open:
		task.State = chorus.StateCancelled
	case slices.Contains(is.Labels, t.opt.FailedLabel):
		task.State = chorus.StateFailed
	case slices.Contains(is.Labels, t.opt.InProgressLabel):
		task.State = chorus.StateClaimed
	default:
		task.State = chorus.StateOpen
	}
	return task
}

func (t *Tracker) redact(s string) string {
	if t.opt.Redact == nil {
		return s
	}
	return t.opt.Redact(s)
}

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-timer.C:
		return nil
	}
}
