package workflows_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"chorus"
	"chorus/activities"
	"chorus/selection"
	"chorus/workflows"
)

var (
	agentActs *activities.Agent
	prov      *activities.Provider
	exe       *activities.Executor
	selector  *activities.Selector
)

var task = chorus.Task{Provider: "board", Repository: "demo", Number: 7, Title: "t", Description: "```sh\necho hi\n```"}

const key = "task/board/demo/7"

var agentA = activities.AgentInfo{ID: "a", Role: "developer", TaskQueue: activities.AgentQueue("a"), ExecutionTimeout: time.Minute, HeartbeatTimeout: 10 * time.Second, QueueTimeout: time.Minute}

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.TaskWorkflow)
	env.RegisterActivity(&activities.Agent{})
	env.RegisterActivity(&activities.Provider{})
	env.RegisterActivity(&activities.Executor{})
	env.RegisterActivity(&activities.Selector{})
	env.RegisterActivity(&activities.Collaborator{})
	return env
}

// chose is a selection of one agent.
func chose(id string) activities.SelectOutput {
	return activities.SelectOutput{Found: true, AgentID: id, Score: 0.95, Scores: []selection.Breakdown{{AgentID: id, Score: 0.95, Qualified: true}}}
}

// happy mocks every step to succeed; tests override single steps first
// (the first matching mock wins).
func happy(env *testsuite.TestWorkflowEnvironment) {
	env.OnActivity(selector.Select, mock.Anything, mock.Anything).Return(chose("a"), nil).Maybe()
	env.OnActivity(agentActs.Accept, mock.Anything, mock.Anything).Return(agentA, nil).Maybe()
	env.OnActivity(prov.Claim, mock.Anything, mock.Anything).Return(activities.ClaimOutput{Fence: 1}, nil).Maybe()
	env.OnActivity(prov.MarkWorking, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(exe.Execute, mock.Anything, mock.Anything).Return(chorus.Result{Success: true, ExecutionType: chorus.ExecScripted, Message: "ok"}, nil).Maybe()
	env.OnActivity(prov.Complete, mock.Anything, mock.Anything).Return(nil).Maybe()
}

func result(t *testing.T, env *testsuite.TestWorkflowEnvironment) workflows.TaskStatus {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var st workflows.TaskStatus
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestTaskCompletes(t *testing.T) {
	env := newEnv(t)
	var completed activities.CompleteInput
	env.OnActivity(prov.Complete, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CompleteInput) error {
		completed = in
		return nil
	}).Once()
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if st.Status != workflows.StatusCompleted || st.AgentID != "a" || st.Fence != 1 || st.Key != key {
		t.Fatalf("status = %+v", st)
	}
	if completed.Key != key || completed.Fence != 1 || !completed.Result.Success {
		t.Fatalf("complete input = %+v", completed)
	}
	env.AssertExpectations(t)
}

func TestExecuteGoesToAgentQueue(t *testing.T) {
	env := newEnv(t)
	var mu sync.Mutex
	queues := map[string]string{}
	local := map[string]bool{}
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		mu.Lock()
		defer mu.Unlock()
		queues[info.ActivityType.Name] = info.TaskQueue
	})
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []interface{}) {
		mu.Lock()
		defer mu.Unlock()
		local[info.ActivityType.Name] = true
	})
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	result(t, env)
	if queues["Execute"] != agentA.TaskQueue {
		t.Fatalf("Execute ran on %q, want %q", queues["Execute"], agentA.TaskQueue)
	}
	if queues["Accept"] != activities.AgentControlQueue("a") {
		t.Fatalf("Accept ran on %q, want the agent's control queue", queues["Accept"])
	}
	// Selection and the short provider steps run as local activities in
	// the workflow's worker; the execution never does.
	for _, name := range []string{"Select", "Claim", "MarkWorking"} {
		if !local[name] {
			t.Errorf("%s is not a local activity", name)
		}
	}
	if local["Execute"] || local["Complete"] {
		t.Fatalf("Execute or Complete ran as a local activity: %v", local)
	}
}

func TestClaimConflictEndsWithoutExecuting(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(prov.Claim, mock.Anything, mock.Anything).Return(activities.ClaimOutput{},
		temporal.NewNonRetryableApplicationError("claim task/board/demo/7: held by b: already claimed", activities.ErrTypeAlreadyClaimed, nil)).Once()
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if st.Status != workflows.StatusFailed || !strings.Contains(st.Error, "already claimed") {
		t.Fatalf("status = %+v", st)
	}
	env.AssertNotCalled(t, "Execute", mock.Anything, mock.Anything)
	env.AssertNotCalled(t, "Complete", mock.Anything, mock.Anything)
}

func TestExecutionFailureMarksTaskFailed(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(exe.Execute, mock.Anything, mock.Anything).Return(chorus.Result{Success: false, ExitCode: 3, Message: "script failed with exit code 3"}, nil).Once()
	var failed activities.FailInput
	env.OnActivity(prov.Fail, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FailInput) error {
		failed = in
		return nil
	}).Once()
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if st.Status != workflows.StatusFailed || st.Result == nil || st.Result.ExitCode != 3 {
		t.Fatalf("status = %+v", st)
	}
	if failed.Fence != 1 || !strings.Contains(failed.Reason, "exit code 3") {
		t.Fatalf("fail input = %+v", failed)
	}
	env.AssertNotCalled(t, "Complete", mock.Anything, mock.Anything)
}

func TestExecutionRetriedAfterSandboxError(t *testing.T) {
	env := newEnv(t)
	calls := 0
	env.OnActivity(exe.Execute, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.ExecuteInput) (chorus.Result, error) {
		calls++
		if calls < 3 {
			return chorus.Result{}, errors.New("docker daemon unreachable")
		}
		return chorus.Result{Success: true, Message: "ok"}, nil
	})
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if st.Status != workflows.StatusCompleted || calls != 3 {
		t.Fatalf("status = %+v after %d calls", st, calls)
	}
}

func TestExecutionGivesUpAfterMaxAttempts(t *testing.T) {
	env := newEnv(t)
	calls := 0
	env.OnActivity(exe.Execute, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.ExecuteInput) (chorus.Result, error) {
		calls++
		return chorus.Result{}, errors.New("docker daemon unreachable")
	})
	env.OnActivity(prov.Fail, mock.Anything, mock.Anything).Return(nil).Once()
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if st.Status != workflows.StatusFailed || calls != int(workflows.DefaultPolicy.MaxExecutionAttempts) || !strings.Contains(st.Error, "unreachable") {
		t.Fatalf("status = %+v after %d calls", st, calls)
	}
}

func TestNoRunnableContentIsNotRetried(t *testing.T) {
	env := newEnv(t)
	calls := 0
	env.OnActivity(exe.Execute, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.ExecuteInput) (chorus.Result, error) {
		calls++
		return chorus.Result{}, temporal.NewNonRetryableApplicationError("no runnable content: the task description holds no ```sh block to run", activities.ErrTypeNoRunnableContent, nil)
	})
	env.OnActivity(prov.Fail, mock.Anything, mock.Anything).Return(nil).Once()
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if st.Status != workflows.StatusFailed || calls != 1 || !strings.Contains(st.Error, "no runnable content") {
		t.Fatalf("status = %+v after %d calls", st, calls)
	}
}

func TestAgentThatNeverStartsIsReplaced(t *testing.T) {
	env := newEnv(t)
	agentB := agentA
	agentB.ID, agentB.TaskQueue = "b", activities.AgentQueue("b")
	env.OnActivity(selector.Select, mock.Anything, mock.Anything).Return(chose("a"), nil).Once()
	env.OnActivity(selector.Select, mock.Anything, mock.MatchedBy(func(in activities.SelectInput) bool { return slices.Equal(in.Exclude, []string{"a"}) })).
		Return(chose("b"), nil).Once()
	env.OnActivity(agentActs.Accept, mock.Anything, mock.MatchedBy(func(in activities.AcceptInput) bool { return in.AgentID == "b" })).Return(agentB, nil).Once()
	env.OnActivity(prov.Claim, mock.Anything, activities.ClaimInput{Key: key, AgentID: "a"}).Return(activities.ClaimOutput{Fence: 1}, nil).Once()
	env.OnActivity(prov.Claim, mock.Anything, activities.ClaimInput{Key: key, AgentID: "b"}).Return(activities.ClaimOutput{Fence: 2}, nil).Once()
	env.OnActivity(exe.Execute, mock.Anything, mock.MatchedBy(func(in activities.ExecuteInput) bool { return in.AgentID == "a" })).
		Return(chorus.Result{}, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, nil)).Once()
	var released activities.FenceInput
	env.OnActivity(prov.Release, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FenceInput) error {
		released = in
		return nil
	}).Once()
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if st.Status != workflows.StatusCompleted || st.AgentID != "b" || st.Fence != 2 || st.Placement != 2 {
		t.Fatalf("status = %+v", st)
	}
	if released.Fence != 1 {
		t.Fatalf("released = %+v, want fence 1", released)
	}
}

func TestCompletionRetriedUntilAcknowledged(t *testing.T) {
	env := newEnv(t)
	calls := 0
	env.OnActivity(prov.Complete, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.CompleteInput) error {
		calls++
		if calls < 4 {
			return errors.New("board unreachable")
		}
		return nil
	})
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if st.Status != workflows.StatusCompleted || calls != 4 {
		t.Fatalf("status = %+v after %d calls", st, calls)
	}
}

func TestStaleFenceOnCompletionMarksFailed(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(prov.Complete, mock.Anything, mock.Anything).Return(
		temporal.NewNonRetryableApplicationError("stale fencing token", activities.ErrTypeFenced, nil)).Once()
	env.OnActivity(prov.Fail, mock.Anything, mock.Anything).Return(
		temporal.NewNonRetryableApplicationError("stale fencing token", activities.ErrTypeFenced, nil)).Once()
	happy(env)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	st := result(t, env)
	if st.Status != workflows.StatusFailed || !strings.Contains(st.Error, "complete: stale fencing token") {
		t.Fatalf("status = %+v", st)
	}
}

func TestCancelDuringExecution(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(exe.Execute, mock.Anything, mock.Anything).After(time.Hour).Return(chorus.Result{Success: true}, nil)
	var cancelled activities.CancelInput
	env.OnActivity(prov.Cancel, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CancelInput) error {
		cancelled = in
		return nil
	}).Once()
	happy(env)
	env.RegisterDelayedCallback(env.CancelWorkflow, 5*time.Second)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not end")
	}
	if err := env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("workflow error = %v, want cancelled", err)
	}
	if cancelled.Key != key {
		t.Fatalf("provider not told: %+v", cancelled)
	}
	env.AssertNotCalled(t, "Complete", mock.Anything, mock.Anything)
}

func TestStatusQueryWhileWorking(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(exe.Execute, mock.Anything, mock.Anything).After(time.Minute).Return(chorus.Result{Success: true}, nil)
	happy(env)
	var during workflows.TaskStatus
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryStatus)
		if err != nil {
			t.Errorf("query: %v", err)
			return
		}
		if err := v.Get(&during); err != nil {
			t.Error(err)
		}
	}, 30*time.Second)
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: task})
	result(t, env)
	if during.Status != workflows.StatusWorking || during.AgentID != "a" {
		t.Fatalf("status during execution = %+v", during)
	}
}
