package workflows_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"chorus/activities"
	"chorus/workflows"
)

var collabActs *activities.Collaborator

func collabEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	env := newEnv(t)
	env.RegisterActivity(&activities.Collaborator{})
	return env
}

func TestHighPriorityAsksForHelpAndCollectsOffers(t *testing.T) {
	env := collabEnv(t)
	agent := agentA
	agent.HelpWindow = time.Minute
	env.OnActivity(agentActs.Accept, mock.Anything, mock.Anything).Return(agent, nil)
	var req activities.HelpRequest
	env.OnActivity(collabActs.RequestHelp, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.HelpRequest) error {
		req = r
		return nil
	}).Once()
	var reflected []activities.ReflectInput
	env.OnActivity(collabActs.ReflectOffer, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ReflectInput) error {
		reflected = append(reflected, in)
		return nil
	})
	happy(env)
	offer := func(id string) func() {
		return func() {
			env.SignalWorkflow(workflows.SignalHelpOffer, activities.HelpOffer{AgentID: id, Role: "developer", Expertise: []string{"go"}})
		}
	}
	env.RegisterDelayedCallback(offer("b"), 10*time.Second)
	env.RegisterDelayedCallback(offer("b"), 20*time.Second) // a repeat counts once
	env.RegisterDelayedCallback(offer("a"), 25*time.Second) // the requester itself is ignored
	env.RegisterDelayedCallback(offer("c"), 30*time.Second)
	env.RegisterDelayedCallback(offer("late"), 2*time.Minute) // after the window
	urgent := task
	urgent.Priority, urgent.Expertise = 9, []string{"go"}
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: urgent})
	st := result(t, env)
	if st.Status != workflows.StatusCompleted || len(st.Helpers) != 2 || st.Helpers[0].AgentID != "b" || st.Helpers[1].AgentID != "c" {
		t.Fatalf("status = %+v", st)
	}
	if req.Key != key || req.AgentID != "a" || req.Priority != 9 || len(req.Roles) != 1 || req.Roles[0] != "developer" || req.Expertise[0] != "go" || req.Issue != 7 {
		t.Fatalf("help request = %+v", req)
	}
	// Each accepted offer is reflected into the task's room (issue 7),
	// once, by the claiming agent.
	if len(reflected) != 2 || reflected[0].Offer.AgentID != "b" || reflected[1].Offer.AgentID != "c" ||
		reflected[0].Issue != 7 || reflected[0].AgentID != "a" || reflected[0].Key != key {
		t.Fatalf("reflected = %+v", reflected)
	}
}

func TestMissingExpertiseAsksForHelp(t *testing.T) {
	env := collabEnv(t)
	agent := agentA
	agent.HelpWindow = time.Second
	env.OnActivity(agentActs.Accept, mock.Anything, mock.Anything).Return(agent, nil)
	env.OnActivity(collabActs.RequestHelp, mock.Anything, mock.Anything).Return(nil).Once()
	happy(env)
	needs := task
	needs.Expertise = []string{"rust"}
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: needs})
	if st := result(t, env); st.Status != workflows.StatusCompleted || len(st.Helpers) != 0 {
		t.Fatalf("status = %+v", st)
	}
	env.AssertExpectations(t)
}

func TestNoHelpNeededNoRequest(t *testing.T) {
	env := collabEnv(t)
	agent := agentA
	agent.Expertise = []string{"go"}
	env.OnActivity(agentActs.Accept, mock.Anything, mock.Anything).Return(agent, nil)
	happy(env)
	routine := task
	routine.Priority, routine.Expertise = 5, []string{"go"}
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: routine})
	result(t, env)
	env.AssertNotCalled(t, "RequestHelp", mock.Anything, mock.Anything)
}

func TestFailedHelpRequestGoesOnAlone(t *testing.T) {
	env := collabEnv(t)
	env.OnActivity(agentActs.Accept, mock.Anything, mock.Anything).Return(agentA, nil)
	env.OnActivity(collabActs.RequestHelp, mock.Anything, mock.Anything).Return(errors.New("no mesh peers"))
	happy(env)
	urgent := task
	urgent.Priority = 10
	env.ExecuteWorkflow(workflows.TaskWorkflow, workflows.TaskInput{Task: urgent})
	if st := result(t, env); st.Status != workflows.StatusCompleted || len(st.Helpers) != 0 {
		t.Fatalf("status = %+v", st)
	}
}
