package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"chorus"
	"chorus/selection"
	"chorus/workflows"
)

// MemoAdminTerm is the memo key holding the admin term under which intake
// started a workflow: its fencing token.
const MemoAdminTerm = "admin_term"

// Fencer refuses a term that is no longer current (election.Fence).
type Fencer interface {
	Check(term uint64) error
}

// Starter starts task workflows.
type Starter struct {
	Client client.Client
	// TaskQueue defaults to workflows.TaskQueue.
	TaskQueue string
	// Term, when set, is the admin term intake runs under; each workflow
	// it starts carries it in its memo (MemoAdminTerm).
	Term uint64
	// Fence, when set, is asked before each start whether Term is still
	// current; a deposed admin's start is refused with its error.
	Fence Fencer
}

// Start starts the task's workflow, or returns the run that already exists
// for it (running or finished).
func (s *Starter) Start(ctx context.Context, t chorus.Task) (client.WorkflowRun, error) {
	queue := s.TaskQueue
	if queue == "" {
		queue = workflows.TaskQueue
	}
	id := t.Key().String()
	if s.Fence != nil {
		if err := s.Fence.Check(s.Term); err != nil {
			return nil, fmt.Errorf("start workflow %s: %w", id, err)
		}
	}
	opts := client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                queue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		// The workflow's tasks (and the activities that inherit it) wait
		// in a backlog in priority order.
		Priority: temporal.Priority{PriorityKey: selection.PriorityKey(t.Priority, false)},
	}
	if s.Term > 0 {
		opts.Memo = map[string]any{MemoAdminTerm: s.Term}
	}
	run, err := s.Client.ExecuteWorkflow(ctx, opts, workflows.TaskWorkflowName, workflows.TaskInput{Task: t})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		// The task ran before and finished; never run it again.
		return s.Client.GetWorkflow(ctx, id, started.RunId), nil
	}
	if err != nil {
		return nil, fmt.Errorf("start workflow %s: %w", id, err)
	}
	return run, nil
}

// Lister lists tasks in a state.
type Lister interface {
	ListOpen(ctx context.Context, limit int) ([]chorus.Task, error)
}

// Sweeper starts workflows for open tasks.
type Sweeper struct {
	Tasks    Lister
	Starter  *Starter
	Interval time.Duration
	Logger   *slog.Logger
	// Score, when set, is the best score an agent known here has for a
	// task (selection.Best); it orders tasks of equal priority.
	Score func(chorus.Task) float64
}

// Sweep starts a workflow for every open task, in the SPEC's order
// (priority, best score, age, then how many open tasks wait for it), and
// returns how many it saw.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	tasks, err := s.Tasks.ListOpen(ctx, 1000)
	if err != nil {
		return 0, fmt.Errorf("list open tasks: %w", err)
	}
	tasks = Order(tasks, s.Score)
	var errs []error
	for _, t := range tasks {
		if _, err := s.Starter.Start(ctx, t); err != nil {
			errs = append(errs, err)
		}
	}
	return len(tasks), errors.Join(errs...)
}

// Run sweeps at once and then every Interval until ctx is done.
func (s *Sweeper) Run(ctx context.Context) error {
	interval := s.Interval
	if interval <= 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.Logger.Warn("sweep failed", "tasks", n, "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Order returns tasks in the order work is taken (selection.Order):
// priority, then the best agent's score (score may be nil), then age, then
// how many of the given tasks depend on each.
func Order(tasks []chorus.Task, score func(chorus.Task) float64) []chorus.Task {
	blocks := map[string]int{}
	for _, t := range tasks {
		for _, d := range t.Dependencies {
			blocks[d]++
		}
	}
	byKey := make(map[string]chorus.Task, len(tasks))
	work := make([]selection.Work, 0, len(tasks))
	for _, t := range tasks {
		k := t.Key().String()
		byKey[k] = t
		w := selection.Work{Key: k, Priority: t.Priority, CreatedAt: t.CreatedAt, Blocks: blocks[k]}
		if score != nil {
			w.Score = score(t)
		}
		work = append(work, w)
	}
	selection.Order(work)
	out := make([]chorus.Task, 0, len(work))
	for _, w := range work {
		out = append(out, byKey[w.Key])
	}
	return out
}
