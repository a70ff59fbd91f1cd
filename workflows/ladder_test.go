package workflows_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"chorus"
	"chorus/activities"
	"chorus/workflows"
)

var (
	aiActs   *activities.AI
	mockActs *activities.Mock
)

func ladderEnv(t *testing.T, agent activities.AgentInfo) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	env := newEnv(t)
	env.RegisterActivity(&activities.AI{})
	env.RegisterActivity(&activities.Mock{})
	env.OnActivity(agentActs.Accept, mock.Anything, mock.Anything).Return(agent, nil)
	return env
}

func withModels(models ...string) activities.AgentInfo {
	a := agentA
	a.Models = models
	return a
}

func rungs(res *chorus.Result) string {
	var parts []string
	for _, s := range res.Ladder {
		parts = append(parts, s.Rung+"="+s.Outcome)
	}
	return strings.Join(parts, " ")
}

func aiCall(model string) any {
	return mock.MatchedBy(func(in activities.AIInput) bool { return in.Model == model })
}

func TestModelDownMovesToAlternate(t *testing.T) {
	env := ladderEnv(t, withModels("primary", "alternate"))
	calls := 0
	env.OnActivity(aiActs.ExecuteAI, mock.Anything, aiCall("primary")).Return(func(context.Context, activities.AIInput) (chorus.Result, error) {
		calls++
		return chorus.Result{}, errors.New("ollama at http://127.0.0.1:11434: unreachable: connection refused")
	})
	env.OnActivity(aiActs.ExecuteAI, mock.Anything, aiCall("alternate")).Return(chorus.Result{Success: true, ExecutionType: chorus.ExecAI, Model: "alternate", Message: "ai: done"}, nil).Once()
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if st.Status != workflows.StatusCompleted || st.Result.Model != "alternate" {
		t.Fatalf("status = %+v", st)
	}
	if got := rungs(st.Result); got != "ai:primary=skipped ai:alternate=succeeded" {
		t.Fatalf("ladder = %s", got)
	}
	if calls != 3 || !strings.Contains(st.Result.Ladder[0].Reason, "unreachable") {
		t.Fatalf("primary called %d times (want 3: retried, then down), reason %q", calls, st.Result.Ladder[0].Reason)
	}
	env.AssertNotCalled(t, "Execute", mock.Anything, mock.Anything)
}

func TestGarbageMovesToScripted(t *testing.T) {
	env := ladderEnv(t, withModels("m"))
	calls := 0
	env.OnActivity(aiActs.ExecuteAI, mock.Anything, mock.Anything).Return(func(context.Context, activities.AIInput) (chorus.Result, error) {
		calls++
		return chorus.Result{}, temporal.NewNonRetryableApplicationError("model m: unusable reply after a correction", activities.ErrTypeModelGarbage, nil)
	})
	env.OnActivity(exe.Execute, mock.Anything, mock.Anything).Return(chorus.Result{Success: true, ExecutionType: chorus.ExecScripted}, nil).Once()
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if st.Status != workflows.StatusCompleted || st.Result.ExecutionType != chorus.ExecScripted || calls != 1 {
		t.Fatalf("status = %+v, ai calls %d", st, calls)
	}
	if got := rungs(st.Result); got != "ai:m=skipped scripted=succeeded" || !strings.Contains(st.Result.Ladder[0].Reason, "unusable reply") {
		t.Fatalf("ladder = %s %+v", got, st.Result.Ladder)
	}
}

func TestBudgetExhaustedMovesDown(t *testing.T) {
	env := ladderEnv(t, withModels("m"))
	env.OnActivity(aiActs.ExecuteAI, mock.Anything, mock.Anything).Return(chorus.Result{},
		temporal.NewNonRetryableApplicationError("budget_exhausted: daily tokens: 100 of 100 used", activities.ErrTypeBudgetExhausted, nil)).Once()
	env.OnActivity(exe.Execute, mock.Anything, mock.Anything).Return(chorus.Result{Success: true, ExecutionType: chorus.ExecScripted}, nil).Once()
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if got := rungs(st.Result); got != "ai:m=skipped scripted=succeeded" || !strings.Contains(st.Result.Ladder[0].Reason, "budget_exhausted") {
		t.Fatalf("ladder = %s %+v", got, st.Result.Ladder)
	}
}

func TestFailedAIRunLetsScriptedTry(t *testing.T) {
	env := ladderEnv(t, withModels("m"))
	env.OnActivity(aiActs.ExecuteAI, mock.Anything, mock.Anything).Return(chorus.Result{Success: false, ExecutionType: chorus.ExecAI, Message: "ai: last commands failed with exit code 2"}, nil).Once()
	env.OnActivity(exe.Execute, mock.Anything, mock.Anything).Return(chorus.Result{Success: true, ExecutionType: chorus.ExecScripted}, nil).Once()
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if got := rungs(st.Result); got != "ai:m=failed scripted=succeeded" {
		t.Fatalf("ladder = %s", got)
	}
}

func TestSandboxFailureFallsToMockWhenEnabled(t *testing.T) {
	agent := agentA
	agent.MockEnabled = true
	env := ladderEnv(t, agent)
	env.OnActivity(exe.Execute, mock.Anything, mock.Anything).Return(chorus.Result{}, errors.New("sandbox run: docker daemon unreachable"))
	env.OnActivity(mockActs.ExecuteMock, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.MockInput) (chorus.Result, error) {
		return (&activities.Mock{}).ExecuteMock(ctx, in)
	}).Once()
	env.OnActivity(prov.Fail, mock.Anything, mock.Anything).Return(nil).Once()
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	// Mock is never reported as real work: labelled mock, not a success.
	if st.Status != workflows.StatusFailed || st.Result.ExecutionType != chorus.ExecMock || st.Result.Success {
		t.Fatalf("status = %+v", st)
	}
	if got := rungs(st.Result); got != "scripted=skipped mock=failed" || !strings.Contains(st.Result.Ladder[0].Reason, "docker daemon unreachable") {
		t.Fatalf("ladder = %s %+v", got, st.Result.Ladder)
	}
	env.AssertNotCalled(t, "Complete", mock.Anything, mock.Anything)
}

func TestMockOnlyWhenEnabled(t *testing.T) {
	env := ladderEnv(t, agentA)
	env.OnActivity(exe.Execute, mock.Anything, mock.Anything).Return(chorus.Result{},
		temporal.NewNonRetryableApplicationError("no runnable content: the task description holds no ```sh block to run", activities.ErrTypeNoRunnableContent, nil)).Once()
	env.OnActivity(prov.Fail, mock.Anything, mock.Anything).Return(nil).Once()
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if st.Status != workflows.StatusFailed || !strings.Contains(st.Error, "no runnable content") || st.Result.ExecutionType != chorus.ExecNone {
		t.Fatalf("status = %+v", st)
	}
	env.AssertNotCalled(t, "ExecuteMock", mock.Anything, mock.Anything)
}

func TestTaskNamedModelIsTriedFirst(t *testing.T) {
	env := ladderEnv(t, withModels("primary", "alternate"))
	var order []string
	env.OnActivity(aiActs.ExecuteAI, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AIInput) (chorus.Result, error) {
		order = append(order, in.Model)
		return chorus.Result{Success: true, ExecutionType: chorus.ExecAI, Model: in.Model}, nil
	})
	happy(env)
	named := task
	named.Model = "alternate"
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: named})
	st := result(t, env)
	if st.Status != workflows.StatusCompleted || strings.Join(order, ",") != "alternate" || rungs(st.Result) != "ai:alternate=succeeded" {
		t.Fatalf("order %v, status %+v", order, st)
	}
}
