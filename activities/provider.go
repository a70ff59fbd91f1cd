package activities

import (
	"context"
	"fmt"

	"chorus"
)

// Provider exposes a task provider to the workflow.
type Provider struct {
	Tasks Tracker
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
}

// CancelInput ends a task on an operator's request.
type CancelInput struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
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
	fence, err := p.Tasks.Claim(ctx, key, in.AgentID)
	if err != nil {
		return ClaimOutput{}, classify(fmt.Errorf("claim %s: %w", key, err))
	}
	return ClaimOutput{Fence: fence}, nil
}

// Release gives the task back so another agent can claim it.
func (p *Provider) Release(ctx context.Context, in FenceInput) error {
	key, err := parseKey(in.Key)
	if err != nil {
		return err
	}
	return classify(p.Tasks.Release(ctx, key, in.Fence))
}

// MarkWorking moves the claimed task to working.
func (p *Provider) MarkWorking(ctx context.Context, in FenceInput) error {
	key, err := parseKey(in.Key)
	if err != nil {
		return err
	}
	return classify(p.Tasks.Start(ctx, key, in.Fence))
}

// Complete records the result on the provider. It is idempotent per fence.
func (p *Provider) Complete(ctx context.Context, in CompleteInput) error {
	key, err := parseKey(in.Key)
	if err != nil {
		return err
	}
	return classify(p.Tasks.Complete(ctx, key, in.Fence, in.Result))
}

// Fail records a failed task with its reason.
func (p *Provider) Fail(ctx context.Context, in FailInput) error {
	key, err := parseKey(in.Key)
	if err != nil {
		return err
	}
	return classify(p.Tasks.Fail(ctx, key, in.Fence, in.Reason))
}

// Cancel marks the task cancelled.
func (p *Provider) Cancel(ctx context.Context, in CancelInput) error {
	key, err := parseKey(in.Key)
	if err != nil {
		return err
	}
	return classify(p.Tasks.Cancel(ctx, key, in.Reason))
}
