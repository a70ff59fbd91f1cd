package activities_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/testsuite"

	"chorus"
	"chorus/activities"
	"chorus/budget"
	"chorus/ops/opstest"
	"chorus/sandbox"
)

func newMetrics(t *testing.T) (*activities.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := activities.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := activities.NewMetrics(reg); err == nil {
		t.Fatal("a second NewMetrics on one registry succeeded")
	}
	return m, reg
}

// More activities referenced through nil pointers.
var (
	agentAct  *activities.Agent
	mockAct   *activities.Mock
	collabAct *activities.Collaborator
)

type want struct {
	name   string
	labels []string
	value  float64
}

func check(t *testing.T, reg *prometheus.Registry, wants []want) {
	t.Helper()
	for _, w := range wants {
		if got := opstest.Value(t, reg, w.name, w.labels...); got != w.value {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
		}
	}
}

// TestTaskMetricsFollowTheProvider runs the provider activities through
// a claim race, the lifecycle of one task and a fenced write.
func TestTaskMetricsFollowTheProvider(t *testing.T) {
	m, reg := newMetrics(t)
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Provider{Tasks: newFakeTracker(), Audit: failingAuditor{}, Logger: discardLogger(), Metrics: m})
	env.RegisterActivity(&activities.Agent{Info: activities.AgentInfo{ID: "a"}, Metrics: m})

	if _, err := env.ExecuteActivity(agentAct.Identify, activities.IdentifyInput{Key: key}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ExecuteActivity(prov.Claim, activities.ClaimInput{Key: key, AgentID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ExecuteActivity(prov.Claim, activities.ClaimInput{Key: key, AgentID: "b"}); err == nil {
		t.Fatal("second claim won")
	}
	if _, err := env.ExecuteActivity(prov.MarkWorking, activities.FenceInput{Key: key, Fence: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ExecuteActivity(prov.MarkWorking, activities.FenceInput{Key: key, Fence: 9}); err == nil {
		t.Fatal("fenced write accepted")
	}
	res := chorus.Result{Success: false, ExecutionType: chorus.ExecScripted, DurationMS: 2500}
	if _, err := env.ExecuteActivity(prov.Complete, activities.CompleteInput{Key: key, Fence: 1, Result: res}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ExecuteActivity(prov.Fail, activities.FailInput{Key: key, Fence: 1, Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ExecuteActivity(prov.Cancel, activities.CancelInput{Key: key, Reason: "operator"}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ExecuteActivity(prov.Release, activities.FenceInput{Key: key, Fence: 1}); err != nil {
		t.Fatal(err)
	}
	check(t, reg, []want{
		{"chorus_tasks_placements_total", nil, 1},
		{"chorus_tasks_claimed_total", nil, 1},
		{"chorus_tasks_claim_conflicts_total", nil, 1},
		{"chorus_tasks_provider_requests_total", []string{"op", "claim", "result", "ok"}, 1},
		{"chorus_tasks_provider_requests_total", []string{"op", "claim", "result", "already_claimed"}, 1},
		{"chorus_tasks_provider_requests_total", []string{"op", "start", "result", "fenced"}, 1},
		{"chorus_tasks_provider_request_duration_seconds", []string{"op", "claim"}, 2},
		{"chorus_tasks_started_total", nil, 1},
		{"chorus_tasks_completed_total", []string{"execution_type", "scripted", "outcome", "failure"}, 1},
		{"chorus_tasks_completed_total", []string{"execution_type", "scripted", "outcome", "success"}, 0},
		{"chorus_tasks_completed_duration_seconds", []string{"execution_type", "scripted"}, 1},
		{"chorus_tasks_failed_total", nil, 1},
		{"chorus_tasks_cancelled_total", nil, 1},
		{"chorus_tasks_released_total", nil, 1},
		// Every successful state change tried to write the audit log.
		{"chorus_tasks_audit_write_failures_total", nil, 5},
	})
	h := opstest.Families(t, reg)["chorus_tasks_completed_duration_seconds"]
	for _, mt := range h.GetMetric() {
		if mt.GetHistogram().GetSampleCount() == 1 && mt.GetHistogram().GetSampleSum() != 2.5 {
			t.Errorf("completed duration summed %v, want 2.5 s", mt.GetHistogram().GetSampleSum())
		}
	}
}

type failingAuditor struct{}

func (failingAuditor) Record(context.Context, string, any) error { return errors.New("disk full") }

func TestExecutionMetrics(t *testing.T) {
	m, reg := newMetrics(t)
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	r := &fakeRunner{files: map[string]string{"a.txt": "x", "b.txt": "y"}, res: sandbox.Result{OutputTail: "ok\n"}}
	env.RegisterActivity(&activities.Executor{Runner: r, DataDir: t.TempDir(), Limits: sandbox.Spec{Image: "img"}, Metrics: m})
	env.RegisterActivity(&activities.Mock{Metrics: m})
	if _, err := env.ExecuteActivity(exe.Execute, activities.ExecuteInput{Key: key, Description: body}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ExecuteActivity(exe.Execute, activities.ExecuteInput{Key: key, Description: "no script here"}); err == nil {
		t.Fatal("a task without a script ran")
	}
	if _, err := env.ExecuteActivity(mockAct.ExecuteMock, activities.MockInput{}); err != nil {
		t.Fatal(err)
	}
	check(t, reg, []want{
		{"chorus_tasks_executions_total", []string{"rung", "scripted", "outcome", "success"}, 1},
		{"chorus_tasks_executions_total", []string{"rung", "scripted", "outcome", "no_content"}, 1},
		{"chorus_tasks_executions_total", []string{"rung", "mock", "outcome", "failure"}, 1},
		{"chorus_tasks_execution_duration_seconds", []string{"rung", "scripted"}, 2},
		{"chorus_tasks_executions_in_flight", []string{"rung", "scripted"}, 0},
		{"chorus_tasks_commands_executed_total", nil, 2}, // mkdir and echo
		{"chorus_tasks_files_generated_total", nil, 2},   // the fake runner writes a.txt and b.txt
	})
}

func TestAIRungMetrics(t *testing.T) {
	m, reg := newMetrics(t)
	model := &scriptedModel{replies: []string{"not json", `{"commands": ["touch x"], "done": false}`, `{"commands": [], "done": true, "summary": "ok"}`}}
	a, _ := newAI(t, model, budget.Limits{})
	a.Metrics = m
	if _, err := runAI(t, a, aiIn); err != nil {
		t.Fatal(err)
	}
	model = &scriptedModel{replies: []string{`{"commands": ["touch a"], "done": false}`, `{"commands": ["touch b"], "done": false}`}}
	a, _ = newAI(t, model, budget.Limits{Steps: 1})
	a.Metrics = m
	if _, err := runAI(t, a, aiIn); err == nil {
		t.Fatal("the step budget did not stop the rung")
	}
	check(t, reg, []want{
		{"chorus_ai_rung_runs_total", []string{"outcome", "success"}, 1},
		{"chorus_ai_rung_runs_total", []string{"outcome", "budget_exhausted"}, 1},
		{"chorus_ai_budget_exhaustions_total", []string{"limit", "task_steps"}, 1},
		{"chorus_ai_steps_total", nil, 4},
		{"chorus_ai_corrections_total", nil, 1},
		{"chorus_tasks_executions_total", []string{"rung", "ai", "outcome", "success"}, 1},
		{"chorus_tasks_executions_total", []string{"rung", "ai", "outcome", "error"}, 1},
	})
}

// publisher fails when err is set.
type publisher struct{ err error }

func (p *publisher) PublishHelpRequest(context.Context, activities.HelpRequest) error { return p.err }

func TestHelpRequestMetrics(t *testing.T) {
	m, reg := newMetrics(t)
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	p := &publisher{}
	env.RegisterActivity(&activities.Collaborator{Publisher: p, Metrics: m})
	if _, err := env.ExecuteActivity(collabAct.RequestHelp, activities.HelpRequest{Key: key}); err != nil {
		t.Fatal(err)
	}
	p.err = errors.New("no gossip peers")
	if _, err := env.ExecuteActivity(collabAct.RequestHelp, activities.HelpRequest{Key: key}); err == nil {
		t.Fatal("failed publish reported success")
	}
	check(t, reg, []want{
		{"chorus_tasks_help_requests_total", []string{"result", "ok"}, 1},
		{"chorus_tasks_help_requests_total", []string{"result", "error"}, 1},
	})
}
