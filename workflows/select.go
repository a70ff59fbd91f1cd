package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"chorus"
	"chorus/activities"
	"chorus/selection"
)

// versionSelection gates agent selection by score: the workflow chooses
// the agent from the gossip registry, hands it the claim on its control
// queue (seeding the task's HMMM room), and places the task again on
// another agent when the chosen one dies. Runs recorded before it let
// whichever worker took the task be the agent.
const versionSelection = "selection"

// runSelected is the task's life since versionSelection: select, claim,
// accept, work, complete, with re-placement when an agent is dead.
func (w *taskRun) runSelected(ctx workflow.Context) error {
	logger := workflow.GetLogger(ctx)
	key := w.st.Key
	w.replaceOnDeath = true
	suspects := map[string]time.Time{} // agent -> excluded until
	deaths := 0
	local := func(opts workflow.ActivityOptions, act any, in any) workflow.Future {
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localOptions(opts)), act, in)
	}
	var res chorus.Result
	for placement := 1; ; placement++ {
		w.st.Placement = placement
		agentID, err := w.selectAgent(ctx, suspects)
		if err != nil {
			return err
		}

		var claim activities.ClaimOutput
		if err := local(providerOptions(), providerActs.Claim, activities.ClaimInput{Key: key, AgentID: agentID}).Get(ctx, &claim); err != nil {
			if temporal.IsCanceledError(err) {
				return err
			}
			w.st.Error = "claim: " + errorMessage(err)
			w.set(ctx, StatusFailed)
			logger.Warn("claim failed", "key", key, "agent", agentID, "error", err)
			return nil
		}
		w.st.AgentID, w.st.Fence = agentID, claim.Fence
		w.st.ClaimedAt = workflow.Now(ctx)
		w.set(ctx, StatusClaimed)

		// The chosen agent takes the claim on its control queue: this
		// proves it is alive and polling, returns its limits and models,
		// and publishes the claim and seeds the task's HMMM room.
		var agent activities.AgentInfo
		actx := workflow.WithActivityOptions(ctx, acceptOptions(w.policy, agentID))
		accept := activities.AcceptInput{Key: key, Number: w.task.Number, Title: w.task.Title, AgentID: agentID, Fence: claim.Fence, Claimed: w.st.ClaimedAt}
		if err := workflow.ExecuteActivity(actx, agentActs.Accept, accept).Get(ctx, &agent); err != nil {
			if temporal.IsCanceledError(err) {
				return err
			}
			logger.Warn("chosen agent did not accept the task; placing again", "key", key, "agent", agentID, "error", err)
			if err := w.release(ctx, claim.Fence, agentID); err != nil {
				return w.fail(ctx, "release: "+errorMessage(err), nil)
			}
			suspects[agentID] = workflow.Now(ctx).Add(w.policy.SuspectFor)
			continue
		}

		if err := local(providerOptions(), providerActs.MarkWorking, activities.FenceInput{Key: key, Fence: claim.Fence, AgentID: agentID}).Get(ctx, nil); err != nil {
			if temporal.IsCanceledError(err) {
				return err
			}
			return w.fail(ctx, "mark working: "+errorMessage(err), nil)
		}
		w.set(ctx, StatusWorking)
		if needsHelp(w.task.Priority, w.task.Expertise, agent) {
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
			Placement:   placement,
		}
		res, err = w.ladder(ctx, agent, in)
		if err == nil {
			break
		}
		if temporal.IsCanceledError(err) {
			return err
		}
		if !agentLost(err) {
			return w.fail(ctx, "execute: "+errorMessage(err), nil)
		}
		// The agent died (no heartbeat) or never started the execution:
		// give the task back and place it on another agent. The new claim
		// has a new fencing token, so nothing the lost agent might still
		// send can complete the task.
		deaths++
		logger.Warn("agent lost during execution; placing again", "key", key, "agent", agent.ID, "error", err, "lost", deaths)
		if err := w.release(ctx, claim.Fence, agentID); err != nil {
			return w.fail(ctx, "release: "+errorMessage(err), nil)
		}
		if deaths >= w.policy.MaxPlacements {
			return w.fail(ctx, fmt.Sprintf("execute: agents lost %d times, last %s: %s", deaths, agent.ID, errorMessage(err)), nil)
		}
		suspects[agentID] = workflow.Now(ctx).Add(w.policy.SuspectFor)
	}
	return w.complete(ctx, res)
}

// agentLost reports a failure that means the agent is gone rather than the
// work failing: no heartbeat, or the execution never started.
func agentLost(err error) bool {
	var te *temporal.TimeoutError
	if !errors.As(err, &te) {
		return false
	}
	switch te.TimeoutType() {
	case enumspb.TIMEOUT_TYPE_HEARTBEAT, enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START:
		return true
	}
	return false
}

// release gives the task back under the claim's fence.
func (w *taskRun) release(ctx workflow.Context, fence int64, agentID string) error {
	lctx := workflow.WithLocalActivityOptions(ctx, localOptions(providerOptions()))
	return workflow.ExecuteLocalActivity(lctx, providerActs.Release, activities.FenceInput{Key: w.st.Key, Fence: fence, AgentID: agentID}).Get(ctx, nil)
}

// selectAgent scores the known agents until one qualifies, waiting on a
// durable timer between rounds; agents under suspicion are passed over
// while anyone else qualifies. After the policy's bound the task is
// escalated once, and the wait goes on.
func (w *taskRun) selectAgent(ctx workflow.Context, suspects map[string]time.Time) (string, error) {
	logger := workflow.GetLogger(ctx)
	start := workflow.Now(ctx)
	wait := w.policy.SelectRetry
	lctx := workflow.WithLocalActivityOptions(ctx, localOptions(identifyOptions()))
	for {
		now := workflow.Now(ctx)
		var exclude []string
		for a, until := range suspects {
			if now.Before(until) {
				exclude = append(exclude, a)
			}
		}
		slices.Sort(exclude)
		in := activities.SelectInput{Key: w.st.Key, Role: w.task.Role, Expertise: w.task.Expertise, Exclude: exclude}
		var out activities.SelectOutput
		err := workflow.ExecuteLocalActivity(lctx, selectorActs.Select, in).Get(ctx, &out)
		if err == nil && !out.Found && len(exclude) > 0 {
			// Nobody else qualifies: a suspect may have come back, and
			// Accept will tell.
			in.Exclude = nil
			err = workflow.ExecuteLocalActivity(lctx, selectorActs.Select, in).Get(ctx, &out)
		}
		if err != nil {
			if temporal.IsCanceledError(err) {
				return "", err
			}
			logger.Warn("selection failed", "key", w.st.Key, "error", err)
		}
		w.st.Scores = out.Scores
		if out.Found {
			return out.AgentID, nil
		}
		w.st.AgentID, w.st.Fence = "", 0
		w.set(ctx, StatusWaiting)
		if waited := workflow.Now(ctx).Sub(start); !w.st.Escalated && waited >= w.policy.EscalateAfter {
			w.st.Escalated = true
			reason := fmt.Sprintf("no agent scored above %.1f for %s (role %q, expertise %v)", selection.Threshold, waited.Round(time.Second), w.task.Role, w.task.Expertise)
			ectx := workflow.WithActivityOptions(ctx, escalateOptions())
			if err := workflow.ExecuteActivity(ectx, collabActs.Escalate, activities.EscalateInput{Key: w.st.Key, Reason: reason, Waited: waited, Scores: out.Scores}).Get(ctx, nil); err != nil {
				if temporal.IsCanceledError(err) {
					return "", err
				}
				logger.Error("escalation failed", "key", w.st.Key, "error", err)
			}
		}
		if err := workflow.Sleep(ctx, wait); err != nil {
			return "", err
		}
		wait = min(2*wait, w.policy.MaxSelectRetry)
	}
}

// complete reports the result (retried until acknowledged), or the
// failure of a result that did not succeed.
func (w *taskRun) complete(ctx workflow.Context, res chorus.Result) error {
	if !res.Success {
		return w.fail(ctx, res.Message, &res)
	}
	cctx := workflow.WithActivityOptions(ctx, completeOptions(w.policy))
	if err := workflow.ExecuteActivity(cctx, providerActs.Complete, activities.CompleteInput{Key: w.st.Key, Fence: w.st.Fence, Result: res}).Get(ctx, nil); err != nil {
		if temporal.IsCanceledError(err) {
			return err
		}
		// Never silently done: a completion that is not acknowledged marks
		// the task failed with the error.
		return w.fail(ctx, "complete: "+errorMessage(err), &res)
	}
	w.st.Result = &res
	w.set(ctx, StatusCompleted)
	return nil
}
