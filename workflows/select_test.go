package workflows_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"chorus"
	"chorus/activities"
	"chorus/selection"
	"chorus/workflows"
)

var agentB = func() activities.AgentInfo {
	b := agentA
	b.ID, b.TaskQueue = "b", activities.AgentQueue("b")
	return b
}()

func acceptBy(id string) any {
	return mock.MatchedBy(func(in activities.AcceptInput) bool { return in.AgentID == id })
}

func executeBy(id string) any {
	return mock.MatchedBy(func(in activities.ExecuteInput) bool { return in.AgentID == id })
}

func excluding(ids ...string) any {
	return mock.MatchedBy(func(in activities.SelectInput) bool { return slices.Equal(in.Exclude, ids) })
}

var nobody = activities.SelectOutput{Scores: []selection.Breakdown{{AgentID: "dev", Score: 0.35}}}

func TestNoQualifiedAgentWaitsAndSelectsAgain(t *testing.T) {
	env := newEnv(t)
	selects := 0
	env.OnActivity(selector.Select, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SelectInput) (activities.SelectOutput, error) {
		selects++
		if selects < 3 {
			return nobody, nil
		}
		return chose("a"), nil
	})
	happy(env)
	var during workflows.TaskStatus
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryStatus)
		if err == nil {
			err = v.Get(&during)
		}
		if err != nil {
			t.Error(err)
		}
	}, 5*time.Second)
	start := env.Now()
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if st.Status != workflows.StatusCompleted || st.AgentID != "a" || selects != 3 || st.Escalated {
		t.Fatalf("status = %+v after %d selections", st, selects)
	}
	if during.Status != workflows.StatusWaiting || len(during.Scores) != 1 || during.Scores[0].AgentID != "dev" || during.AgentID != "" {
		t.Fatalf("status while waiting = %+v", during)
	}
	// Durable timers of 10 s, then 20 s.
	if waited := env.Now().Sub(start); waited < 30*time.Second {
		t.Fatalf("waited %s between selections, want the 10 s + 20 s backoff", waited)
	}
	env.AssertNotCalled(t, "Escalate", mock.Anything, mock.Anything)
}

func TestNoQualifiedAgentIsEscalatedOnceAfterTheBound(t *testing.T) {
	env := newEnv(t)
	start := env.Now()
	env.OnActivity(selector.Select, mock.Anything, mock.Anything).Return(func(context.Context, activities.SelectInput) (activities.SelectOutput, error) {
		if env.Now().Sub(start) < 30*time.Minute {
			return nobody, nil
		}
		return chose("a"), nil
	})
	var escalations []activities.EscalateInput
	env.OnActivity(collabActs.Escalate, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.EscalateInput) error {
		escalations = append(escalations, in)
		return nil
	})
	happy(env)
	needs := task
	needs.Role = "dba"
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: needs})
	st := result(t, env)
	if st.Status != workflows.StatusCompleted || !st.Escalated {
		t.Fatalf("status = %+v", st)
	}
	if len(escalations) != 1 {
		t.Fatalf("%d escalations, want exactly one", len(escalations))
	}
	e := escalations[0]
	if e.Key != key || e.Waited < workflows.DefaultPolicy.EscalateAfter || !strings.Contains(e.Reason, `role "dba"`) || len(e.Scores) != 1 {
		t.Fatalf("escalation = %+v", e)
	}
}

func TestDeadAgentIsReplacedWithANewFence(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(selector.Select, mock.Anything, excluding()).Return(chose("a"), nil).Once()
	env.OnActivity(selector.Select, mock.Anything, excluding("a")).Return(chose("b"), nil).Once()
	env.OnActivity(agentActs.Accept, mock.Anything, acceptBy("a")).Return(agentA, nil).Once()
	env.OnActivity(agentActs.Accept, mock.Anything, acceptBy("b")).Return(agentB, nil).Once()
	env.OnActivity(prov.Claim, mock.Anything, activities.ClaimInput{Key: key, AgentID: "a"}).Return(activities.ClaimOutput{Fence: 1}, nil).Once()
	env.OnActivity(prov.Claim, mock.Anything, activities.ClaimInput{Key: key, AgentID: "b"}).Return(activities.ClaimOutput{Fence: 2}, nil).Once()
	// Agent a dies mid-execution: its heartbeats stop. (The test suite
	// retries a heartbeat timeout, which the server does not for
	// "TemporalTimeout:Heartbeat"; so every attempt on a times out.)
	env.OnActivity(exe.Execute, mock.Anything, executeBy("a")).Return(chorus.Result{}, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil))
	var placement int
	env.OnActivity(exe.Execute, mock.Anything, executeBy("b")).Return(func(_ context.Context, in activities.ExecuteInput) (chorus.Result, error) {
		placement = in.Placement
		return chorus.Result{Success: true, AgentID: "b", Message: "ok"}, nil
	}).Once()
	var released []activities.FenceInput
	env.OnActivity(prov.Release, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FenceInput) error {
		released = append(released, in)
		return nil
	})
	var completed activities.CompleteInput
	env.OnActivity(prov.Complete, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CompleteInput) error {
		completed = in
		return nil
	}).Once()
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if st.Status != workflows.StatusCompleted || st.AgentID != "b" || st.Fence != 2 || st.Placement != 2 || placement != 2 {
		t.Fatalf("status = %+v (execution placement %d)", st, placement)
	}
	if len(released) != 1 || released[0].Fence != 1 || released[0].AgentID != "a" {
		t.Fatalf("released = %+v, want a's claim (fence 1) only", released)
	}
	// The completion carries the new claim's fence: a late write under
	// fence 1 is refused by the provider.
	if completed.Fence != 2 || completed.Result.AgentID != "b" {
		t.Fatalf("completion = %+v", completed)
	}
	env.AssertExpectations(t)
}

func TestUnreachableAgentIsPassedOver(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(selector.Select, mock.Anything, excluding()).Return(chose("a"), nil).Once()
	env.OnActivity(selector.Select, mock.Anything, excluding("a")).Return(chose("b"), nil).Once()
	env.OnActivity(agentActs.Accept, mock.Anything, acceptBy("a")).Return(activities.AgentInfo{}, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, nil)).Once()
	env.OnActivity(agentActs.Accept, mock.Anything, acceptBy("b")).Return(agentB, nil).Once()
	env.OnActivity(prov.Claim, mock.Anything, activities.ClaimInput{Key: key, AgentID: "a"}).Return(activities.ClaimOutput{Fence: 1}, nil).Once()
	env.OnActivity(prov.Claim, mock.Anything, activities.ClaimInput{Key: key, AgentID: "b"}).Return(activities.ClaimOutput{Fence: 2}, nil).Once()
	env.OnActivity(prov.Release, mock.Anything, activities.FenceInput{Key: key, Fence: 1, AgentID: "a"}).Return(nil).Once()
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	if st := result(t, env); st.Status != workflows.StatusCompleted || st.AgentID != "b" || st.Fence != 2 {
		t.Fatalf("status = %+v", st)
	}
	env.AssertExpectations(t)
	env.AssertNotCalled(t, "Execute", mock.Anything, executeBy("a"))
}

// A restarted agent that is the only one qualified gets the task back
// (under a new fence) instead of waiting out its suspicion.
func TestOnlyAgentComesBack(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(selector.Select, mock.Anything, excluding("a")).Return(nobody, nil).Once()
	env.OnActivity(selector.Select, mock.Anything, excluding()).Return(chose("a"), nil).Twice()
	claims := int64(0)
	env.OnActivity(prov.Claim, mock.Anything, mock.Anything).Return(func(context.Context, activities.ClaimInput) (activities.ClaimOutput, error) {
		claims++
		return activities.ClaimOutput{Fence: claims}, nil
	})
	executions := 0
	env.OnActivity(exe.Execute, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ExecuteInput) (chorus.Result, error) {
		if in.Placement == 1 {
			return chorus.Result{}, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil)
		}
		executions++
		return chorus.Result{Success: true, Message: "ok"}, nil
	})
	env.OnActivity(prov.Release, mock.Anything, mock.Anything).Return(nil).Once()
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	if st := result(t, env); st.Status != workflows.StatusCompleted || st.AgentID != "a" || st.Fence != 2 || executions != 1 {
		t.Fatalf("status = %+v after %d executions", st, executions)
	}
	env.AssertExpectations(t)
}

func TestAgentsLostTooOftenFailsTheTask(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(exe.Execute, mock.Anything, mock.Anything).Return(chorus.Result{}, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil))
	env.OnActivity(prov.Release, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(prov.Fail, mock.Anything, mock.Anything).Return(nil).Once()
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if st.Status != workflows.StatusFailed || !strings.Contains(st.Error, "agents lost 3 times") || st.Placement != workflows.DefaultPolicy.MaxPlacements {
		t.Fatalf("status = %+v", st)
	}
}

// A lost agent ends the ladder: the scripted rung must not wait on the
// dead agent after its AI rung timed out.
func TestLostAgentStopsTheLadder(t *testing.T) {
	env := newEnv(t)
	env.RegisterActivity(&activities.AI{})
	withModel := agentA
	withModel.Models = []string{"llama"}
	env.OnActivity(agentActs.Accept, mock.Anything, acceptBy("a")).Return(withModel, nil)
	ai := 0
	env.OnActivity(aiActs.ExecuteAI, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AIInput) (chorus.Result, error) {
		if in.Placement == 1 {
			return chorus.Result{}, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil)
		}
		ai++
		return chorus.Result{Success: true, ExecutionType: chorus.ExecAI, Message: "ok"}, nil
	})
	env.OnActivity(prov.Release, mock.Anything, mock.Anything).Return(nil)
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if st.Status != workflows.StatusCompleted || ai != 1 || st.Result.ExecutionType != chorus.ExecAI || st.Placement != 2 {
		t.Fatalf("status = %+v after %d AI runs", st, ai)
	}
	env.AssertNotCalled(t, "Execute", mock.Anything, mock.Anything)
}
