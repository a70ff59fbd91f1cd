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

	"chorus"
	"chorus/workflows"
)

// Starter starts task workflows.
type Starter struct {
	Client client.Client
	// TaskQueue defaults to workflows.TaskQueue.
	TaskQueue string
}

// Start starts the task's workflow, or returns the run that already exists
// for it (running or finished).
func (s *Starter) Start(ctx context.Context, t chorus.Task) (client.WorkflowRun, error) {
	queue := s.TaskQueue
	if queue == "" {
		queue = workflows.TaskQueue
	}
	id := t.Key().String()
	run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                queue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, workflows.TaskWorkflowName, workflows.TaskInput{Task: t})
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
}

// Sweep starts a workflow for every open task and returns how many it saw.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	tasks, err := s.Tasks.ListOpen(ctx, 1000)
	if err != nil {
		return 0, fmt.Errorf("list open tasks: %w", err)
	}
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
