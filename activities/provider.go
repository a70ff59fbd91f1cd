package activities

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"chorus"
)

// Auditor records lifecycle events in the node's audit log.
type Auditor interface {
	Record(ctx context.Context, typ string, data any) error
}

// Audit entry types the provider activities record (SPEC section 8).
const (
	AuditTaskClaimed   = "task_claimed"
	AuditTaskProgress  = "task_progress"
	AuditTaskCompleted = "task_completed"
	AuditTaskFailed    = "task_failed"
)

// AuditRecord is the data of the provider activities' audit entries.
type AuditRecord struct {
	Key           string `json:"task_key"`
	AgentID       string `json:"agent_id,omitempty"`
	Fence         int64  `json:"fence,omitempty"`
	Status        string `json:"status,omitempty"`
	Success       bool   `json:"success,omitempty"`
	ExecutionType string `json:"execution_type,omitempty"`
	DurationMS    int64  `json:"duration_ms,omitempty"`
	Reason        string `json:"reason,omitempty"`
}

// ProgressEvent is a task state change for the network: task_progress,
// and task_complete when the task ends.
type ProgressEvent struct {
	Key     string           `json:"key"`
	AgentID string           `json:"agent_id"`
	Fence   int64            `json:"fence"`
	Status  chorus.TaskState `json:"status"`
	// Result is set for completed tasks; Reason for failed ones.
	Result *chorus.Result `json:"result,omitempty"`
	Reason string         `json:"reason,omitempty"`
}

// ProgressPublisher tells the network about task state changes. It is
// best effort: the provider is the record, gossip only informs peers.
type ProgressPublisher interface {
	PublishProgress(ctx context.Context, ev ProgressEvent)
}

// Provider exposes a task provider to the workflow.
type Provider struct {
	Tasks Tracker
	// Progress, when set, publishes working, completed and failed.
	Progress ProgressPublisher
	// Audit, when set, receives an entry for every state change this node
	// makes. A failed audit write is logged, not fatal: the provider is
	// the record of the task's state.
	Audit  Auditor
	Logger *slog.Logger
	// Metrics, when set, counts the provider calls and task outcomes.
	Metrics *Metrics
}

func (p *Provider) progress(ctx context.Context, ev ProgressEvent) {
	if p.Progress != nil {
		p.Progress.PublishProgress(ctx, ev)
	}
}

func (p *Provider) audit(ctx context.Context, typ string, r AuditRecord) {
	if p.Audit == nil {
		return
	}
	if err := p.Audit.Record(ctx, typ, r); err != nil && p.Logger != nil {
		p.Metrics.event(auditFailed)
		p.Logger.Warn("audit write failed", "type", typ, "key", r.Key, "error", err)
	}
}

// ClaimInput asks to claim a task for an agent.
type ClaimInput struct {
	Key     string `json:"key"`
	AgentID string `json:"agent_id"`
}

// ClaimOutput carries the fencing token of the claim.
type ClaimOutput struct {
	Fence int64 `json:"fence"`
}

// FenceInput names a task and the claim's fencing token.
type FenceInput struct {
	Key   string `json:"key"`
	Fence int64  `json:"fence"`
	// AgentID is the claim's agent, for progress messages.
	AgentID string `json:"agent_id,omitempty"`
}

// CompleteInput reports a finished execution.
type CompleteInput struct {
	Key    string        `json:"key"`
	Fence  int64         `json:"fence"`
	Result chorus.Result `json:"result"`
}

// FailInput reports a failure with its reason.
type FailInput struct {
	Key    string `json:"key"`
	Fence  int64  `json:"fence"`
	Reason string `json:"reason"`
	// AgentID is the claim's agent, for progress messages.
	AgentID string `json:"agent_id,omitempty"`
}

// CancelInput ends a task on an operator's request.
type CancelInput struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
	// AgentID and Fence are the claim's, when the task had one, for the
	// progress messages.
	AgentID string `json:"agent_id,omitempty"`
	Fence   int64  `json:"fence,omitempty"`
}

func parseKey(s string) (chorus.TaskKey, error) {
	k, err := chorus.ParseTaskKey(s)
	if err != nil {
		return k, classify(err)
	}
	return k, nil
}

// Claim claims the task atomically. Losing the race is the non-retryable
// ErrTypeAlreadyClaimed.
func (p *Provider) Claim(ctx context.Context, in ClaimInput) (ClaimOutput, error) {
	key, err := parseKey(in.Key)
	if err != nil {
		return ClaimOutput{}, err
	}
	start := time.Now()
	fence, err := p.Tasks.Claim(ctx, key, in.AgentID)
	p.Metrics.providerCall("claim", start, err)
	p.Metrics.claim(err)
	if err != nil {
		return ClaimOutput{}, classify(fmt.Errorf("claim %s: %w", key, err))
	}
	p.audit(ctx, AuditTaskClaimed, AuditRecord{Key: in.Key, AgentID: in.AgentID, Fence: fence})
	return ClaimOutput{Fence: fence}, nil
}

// Release gives the task back so another agent can claim it.
func (p *Provider) Release(ctx context.Context, in FenceInput) error {
	key, err := parseKey(in.Key)
	if err != nil {
		return err
	}
	start := time.Now()
	err = p.Tasks.Release(ctx, key, in.Fence)
	p.Metrics.providerCall("release", start, err)
	if err == nil {
		p.Metrics.event(taskReleased)
	}
	return classify(err)
}

// MarkWorking moves the claimed task to working.
func (p *Provider) MarkWorking(ctx context.Context, in FenceInput) error {
	key, err := parseKey(in.Key)
	if err != nil {
		return err
	}
	start := time.Now()
	err = p.Tasks.Start(ctx, key, in.Fence)
	p.Metrics.providerCall("start", start, err)
	if err != nil {
		return classify(err)
	}
	p.Metrics.event(taskStarted)
	p.audit(ctx, AuditTaskProgress, AuditRecord{Key: in.Key, AgentID: in.AgentID, Fence: in.Fence, Status: "working"})
	p.progress(ctx, ProgressEvent{Key: in.Key, AgentID: in.AgentID, Fence: in.Fence, Status: chorus.StateWorking})
	return nil
}

// Complete records the result on the provider. It is idempotent per fence.
func (p *Provider) Complete(ctx context.Context, in CompleteInput) error {
	key, err := parseKey(in.Key)
	if err != nil {
		return err
	}
	start := time.Now()
	err = p.Tasks.Complete(ctx, key, in.Fence, in.Result)
	p.Metrics.providerCall("complete", start, err)
	if err != nil {
		return classify(err)
	}
	p.Metrics.completedTask(in.Result)
	p.audit(ctx, AuditTaskCompleted, AuditRecord{Key: in.Key, AgentID: in.Result.AgentID, Fence: in.Fence, Success: in.Result.Success,
		ExecutionType: in.Result.ExecutionType, DurationMS: in.Result.DurationMS})
	res := in.Result
	p.progress(ctx, ProgressEvent{Key: in.Key, AgentID: in.Result.AgentID, Fence: in.Fence, Status: chorus.StateCompleted, Result: &res})
	return nil
}

// Fail records a failed task with its reason.
func (p *Provider) Fail(ctx context.Context, in FailInput) error {
	key, err := parseKey(in.Key)
	if err != nil {
		return err
	}
	start := time.Now()
	err = p.Tasks.Fail(ctx, key, in.Fence, in.Reason)
	p.Metrics.providerCall("fail", start, err)
	if err != nil {
		return classify(err)
	}
	p.Metrics.event(taskFailed)
	p.audit(ctx, AuditTaskFailed, AuditRecord{Key: in.Key, AgentID: in.AgentID, Fence: in.Fence, Reason: in.Reason})
	p.progress(ctx, ProgressEvent{Key: in.Key, AgentID: in.AgentID, Fence: in.Fence, Status: chorus.StateFailed, Reason: in.Reason})
	return nil
}

// Cancel marks the task cancelled.
func (p *Provider) Cancel(ctx context.Context, in CancelInput) error {
	key, err := parseKey(in.Key)
	if err != nil {
		return err
	}
	start := time.Now()
	err = p.Tasks.Cancel(ctx, key, in.Reason)
	p.Metrics.providerCall("cancel", start, err)
	if err != nil {
		return classify(err)
	}
	p.Metrics.event(taskCancelled)
	p.audit(ctx, AuditTaskFailed, AuditRecord{Key: in.Key, AgentID: in.AgentID, Fence: in.Fence, Status: "cancelled", Reason: in.Reason})
	p.progress(ctx, ProgressEvent{Key: in.Key, AgentID: in.AgentID, Fence: in.Fence, Status: chorus.StateCancelled, Reason: in.Reason})
	return nil
}
