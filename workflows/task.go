package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"chorus"
	"chorus/activities"
	"chorus/selection"
)

// TaskInput starts a task workflow.
type TaskInput struct {
	Task chorus.Task `json:"task"`
}

// TaskStatus is the workflow's view of its task: the answer to QueryStatus
// while it runs and its result when it ends.
type TaskStatus struct {
	Key       string         `json:"task_key"`
	Status    string         `json:"status"`
	AgentID   string         `json:"agent_id,omitempty"`
	Fence     int64          `json:"fence,omitempty"`
	Placement int            `json:"placement"`
	Result    *chorus.Result `json:"result,omitempty"`
	Error     string         `json:"error,omitempty"`
	// Helpers are the peers that offered help in the collaboration step.
	Helpers []activities.HelpOffer `json:"helpers,omitempty"`
	// Scores are the candidates of the latest selection, best first.
	Scores []selection.Breakdown `json:"scores,omitempty"`
	// Escalated is set once no agent qualified within the policy's bound
	// and the task was handed to humans (it keeps waiting).
	Escalated bool      `json:"escalated,omitempty"`
	ClaimedAt time.Time `json:"claimed_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Activities are referenced through nil pointers; the worker registers the
// real ones.
var (
	agentActs    *activities.Agent
	providerActs *activities.Provider
	executorActs *activities.Executor
	aiActs       *activities.AI
	mockActs     *activities.Mock
	collabActs   *activities.Collaborator
	selectorActs *activities.Selector
)

// versionLocalSteps gates running Identify, Claim and MarkWorking as local
// activities.
const versionLocalSteps = "local-provider-steps"

// versionLadder gates the fallback ladder (AI -> alternate -> scripted ->
// mock); runs recorded before it take the scripted rung only.
const versionLadder = "fallback-ladder"

// TaskWorkflow runs one task from claim to completion.
func TaskWorkflow(ctx workflow.Context, in TaskInput) (TaskStatus, error) {
	w := &taskRun{policy: DefaultPolicy, task: in.Task}
	w.st = TaskStatus{Key: in.Task.Key().String(), Status: StatusPending, UpdatedAt: workflow.Now(ctx)}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (TaskStatus, error) { return w.st, nil }); err != nil {
		return w.st, fmt.Errorf("register status query: %w", err)
	}
	err := w.run(ctx)
	if temporal.IsCanceledError(err) || errors.Is(ctx.Err(), workflow.ErrCanceled) {
		return w.cancel(ctx)
	}
	return w.st, err
}

type taskRun struct {
	policy Policy
	task   chorus.Task
	st     TaskStatus
	// replaceOnDeath is set on the selection path: a lost agent ends a
	// rung (no server retry on the same queue) and the task is placed
	// again; offers are reflected into the task's room.
	replaceOnDeath bool
}

func (w *taskRun) set(ctx workflow.Context, status string) {
	w.st.Status = status
	w.st.UpdatedAt = workflow.Now(ctx)
}

// run places, claims, executes and completes the task. It returns an error
// only for cancellation and for failures of the workflow machinery; task
// failures end in w.st.
func (w *taskRun) run(ctx workflow.Context) error {
	logger := workflow.GetLogger(ctx)
	key := w.st.Key
	// Identify, Claim and MarkWorking are short idempotent calls: as local
	// activities they run inside the workflow task of the worker that
	// takes the task, which saves the server a round trip and a handful of
	// history events each. Runs recorded before keep regular activities.
	local := workflow.GetVersion(ctx, versionLocalSteps, workflow.DefaultVersion, 1) == 1
	if workflow.GetVersion(ctx, versionSelection, workflow.DefaultVersion, 1) == 1 {
		return w.runSelected(ctx)
	}
	step := func(opts workflow.ActivityOptions, act any, in any) workflow.Future {
		if local {
			lctx := workflow.WithLocalActivityOptions(ctx, localOptions(opts))
			return workflow.ExecuteLocalActivity(lctx, act, in)
		}
		return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), act, in)
	}
	var res chorus.Result
	for placement := 1; ; placement++ {
		w.st.Placement = placement
		var agent activities.AgentInfo
		if err := step(identifyOptions(), agentActs.Identify, activities.IdentifyInput{Key: key}).Get(ctx, &agent); err != nil {
			return err
		}

		pctx := workflow.WithActivityOptions(ctx, providerOptions())
		var claim activities.ClaimOutput
		if err := step(providerOptions(), providerActs.Claim, activities.ClaimInput{Key: key, AgentID: agent.ID}).Get(ctx, &claim); err != nil {
			if temporal.IsCanceledError(err) {
				return err
			}
			w.st.Error = "claim: " + errorMessage(err)
			w.set(ctx, StatusFailed)
			logger.Warn("claim failed", "key", key, "agent", agent.ID, "error", err)
			return nil
		}
		w.st.AgentID, w.st.Fence = agent.ID, claim.Fence
		w.st.ClaimedAt = workflow.Now(ctx)
		w.set(ctx, StatusClaimed)

		if err := step(providerOptions(), providerActs.MarkWorking, activities.FenceInput{Key: key, Fence: claim.Fence}).Get(ctx, nil); err != nil {
			if temporal.IsCanceledError(err) {
				return err
			}
			return w.fail(ctx, "mark working: "+errorMessage(err), nil)
		}
		w.set(ctx, StatusWorking)
		if workflow.GetVersion(ctx, versionCollaboration, workflow.DefaultVersion, 1) == 1 && needsHelp(w.task.Priority, w.task.Expertise, agent) {
			w.collaborate(ctx, agent)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}

		timeout := agent.ExecutionTimeout
		if timeout <= 0 {
			timeout = defaultExecutionTimeout
		}
		in := activities.ExecuteInput{
			Key:         key,
			AgentID:     agent.ID,
			AgentRole:   agent.Role,
			Repository:  w.task.Repository,
			Title:       w.task.Title,
			Description: w.task.Description,
			Timeout:     timeout,
			AllowHosts:  w.task.AllowHosts,
		}
		var err error
		if workflow.GetVersion(ctx, versionLadder, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			// Histories recorded before the fallback ladder: the
			// scripted rung only.
			ectx := workflow.WithActivityOptions(ctx, executeOptions(w.policy, agent))
			err = workflow.ExecuteActivity(ectx, executorActs.Execute, in).Get(ctx, &res)
		} else {
			res, err = w.ladder(ctx, agent, in)
		}
		if err == nil {
			break
		}
		if temporal.IsCanceledError(err) {
			return err
		}
		var te *temporal.TimeoutError
		if errors.As(err, &te) && te.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START && placement < w.policy.MaxPlacements {
			// The agent never picked the execution up: give the task back
			// and place it again.
			logger.Warn("agent did not start the execution; placing again", "key", key, "agent", agent.ID)
			if err := workflow.ExecuteActivity(pctx, providerActs.Release, activities.FenceInput{Key: key, Fence: claim.Fence}).Get(ctx, nil); err != nil {
				return w.fail(ctx, "release: "+errorMessage(err), nil)
			}
			continue
		}
		return w.fail(ctx, "execute: "+errorMessage(err), nil)
	}

	return w.complete(ctx, res)
}

// fail records the failure on the provider (best effort: a stale fence
// means another claim owns the task now) and in the status.
func (w *taskRun) fail(ctx workflow.Context, reason string, res *chorus.Result) error {
	w.st.Error = reason
	w.st.Result = res
	pctx := workflow.WithActivityOptions(ctx, providerOptions())
	if err := workflow.ExecuteActivity(pctx, providerActs.Fail, activities.FailInput{Key: w.st.Key, Fence: w.st.Fence, Reason: reason, AgentID: w.st.AgentID}).Get(ctx, nil); err != nil {
		if temporal.IsCanceledError(err) {
			return err
		}
		workflow.GetLogger(ctx).Error("recording failure on the provider failed", "key", w.st.Key, "error", err)
		w.st.Error = reason + "; recording the failure failed: " + errorMessage(err)
	}
	w.set(ctx, StatusFailed)
	return nil
}

// cancel marks the task cancelled on the provider with a context that
// outlives the cancellation, then ends the workflow as cancelled.
func (w *taskRun) cancel(ctx workflow.Context) (TaskStatus, error) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	pctx := workflow.WithActivityOptions(dctx, providerOptions())
	if err := workflow.ExecuteActivity(pctx, providerActs.Cancel, activities.CancelInput{Key: w.st.Key, Reason: "cancelled by operator", AgentID: w.st.AgentID, Fence: w.st.Fence}).Get(dctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("recording cancellation on the provider failed", "key", w.st.Key, "error", err)
	}
	w.st.Error = "cancelled"
	w.set(dctx, StatusCancelled)
	return w.st, temporal.NewCanceledError("cancelled by operator")
}

// errorMessage unwraps activity and application errors to their message.
func errorMessage(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Error()
	}
	var te *temporal.TimeoutError
	if errors.As(err, &te) {
		return "timeout: " + te.TimeoutType().String()
	}
	return err.Error()
}
