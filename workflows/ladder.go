package workflows

import (
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"chorus"
	"chorus/activities"
)

// ladder runs the fallback ladder on the agent: each configured model in
// order (primary, then alternates), then the scripted commands of the task,
// then mock execution when the agent enables it. Each rung is its own
// activity, retried by Temporal on its own; a rung that cannot run moves
// the ladder down and is recorded with its reason in the result and, as a
// memo update, in the workflow history. Every rung tried is in the result.
//
// A rung that ran and failed ends the ladder with its result, except for an
// AI rung, whose failure lets the next rung try. The returned error is only
// for cancellation and for an agent that never picked a rung up
// (schedule-to-start timeout), which the caller handles by placing the task
// again.
func (w *taskRun) ladder(ctx workflow.Context, agent activities.AgentInfo, in activities.ExecuteInput) (chorus.Result, error) {
	var steps []chorus.LadderStep
	record := func(rung, outcome, reason string) {
		steps = append(steps, chorus.LadderStep{Rung: rung, Outcome: outcome, Reason: reason})
	}
	// stepDown records a rung the ladder leaves, in the result and, as a
	// memo update, in the workflow history. The common path, where the
	// first rung settles the task, writes no memo: a memo update is a
	// visibility write on the server.
	stepDown := func(rung, outcome, reason string) {
		record(rung, outcome, reason)
		if err := workflow.UpsertMemo(ctx, map[string]interface{}{"ladder": steps}); err != nil {
			workflow.GetLogger(ctx).Warn("recording the ladder in the memo failed", "error", err)
		}
	}
	done := func(res chorus.Result) (chorus.Result, error) {
		res.Ladder = steps
		return res, nil
	}

	for _, model := range modelOrder(agent.Models, w.task.Model) {
		rung := "ai:" + model
		var res chorus.Result
		actx := workflow.WithActivityOptions(ctx, w.rungOptions(aiOptions(agent)))
		err := workflow.ExecuteActivity(actx, aiActs.ExecuteAI, activities.AIInput{ExecuteInput: in, Model: model}).Get(ctx, &res)
		switch {
		case err == nil && res.Success:
			record(rung, chorus.RungSucceeded, "")
			return done(res)
		case err == nil:
			stepDown(rung, chorus.RungFailed, res.Message)
		case w.stopLadder(err):
			return chorus.Result{}, err
		default:
			stepDown(rung, chorus.RungSkipped, errorMessage(err))
		}
	}

	var res chorus.Result
	ectx := workflow.WithActivityOptions(ctx, w.rungOptions(executeOptions(w.policy, agent)))
	err := workflow.ExecuteActivity(ectx, executorActs.Execute, in).Get(ctx, &res)
	switch {
	case err == nil:
		outcome := chorus.RungSucceeded
		if !res.Success {
			outcome = chorus.RungFailed
		}
		record(chorus.ExecScripted, outcome, reasonOf(res))
		return done(res)
	case w.stopLadder(err):
		return chorus.Result{}, err
	case agent.MockEnabled:
		stepDown(chorus.ExecScripted, chorus.RungSkipped, errorMessage(err))
	default:
		record(chorus.ExecScripted, chorus.RungSkipped, errorMessage(err))
	}

	if agent.MockEnabled {
		mctx := workflow.WithActivityOptions(ctx, w.rungOptions(mockOptions(agent)))
		err := workflow.ExecuteActivity(mctx, mockActs.ExecuteMock, activities.MockInput{ExecuteInput: in, Succeed: agent.MockSucceeds}).Get(ctx, &res)
		switch {
		case err == nil:
			outcome := chorus.RungSucceeded
			if !res.Success {
				outcome = chorus.RungFailed
			}
			record(chorus.ExecMock, outcome, "simulated execution, no real work")
			return done(res)
		case w.stopLadder(err):
			return chorus.Result{}, err
		default:
			record(chorus.ExecMock, chorus.RungSkipped, errorMessage(err))
		}
	}

	last := steps[len(steps)-1]
	return done(chorus.Result{
		Success:       false,
		ExecutionType: chorus.ExecNone,
		AgentID:       agent.ID,
		Message:       fmt.Sprintf("no rung of the fallback ladder could run; last: %s: %s", last.Rung, last.Reason),
	})
}

func reasonOf(res chorus.Result) string {
	if res.Success {
		return ""
	}
	return res.Message
}

// stopLadder reports errors that end the ladder instead of moving it down:
// cancellation, and an agent that is gone (on the selection path a
// heartbeat timeout too: the next rung would wait for the same dead agent).
func (w *taskRun) stopLadder(err error) bool {
	if temporal.IsCanceledError(err) || (w.replaceOnDeath && agentLost(err)) {
		return true
	}
	var te *temporal.TimeoutError
	return errors.As(err, &te) && te.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START
}

// modelOrder puts the model the task names first; the agent's own order
// (primary by role, then alternates) follows. A named model the agent does
// not have is still tried first, so the ladder records why it was skipped.
func modelOrder(agentModels []string, named string) []string {
	if named == "" {
		return agentModels
	}
	out := []string{named}
	for _, m := range agentModels {
		if m != named {
			out = append(out, m)
		}
	}
	return out
}
