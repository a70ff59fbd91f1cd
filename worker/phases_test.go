package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"chorus"
	"chorus/activities"
	"chorus/backbeat"
	"chorus/gossip"
	"chorus/sandbox"
)

// fakeLifecycle records what opPhases feeds the tracker.
type fakeLifecycle struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeLifecycle) add(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeLifecycle) Advance(key string, p backbeat.Phase, agent string) error {
	f.add("advance " + key + " " + string(p) + " " + agent)
	return nil
}

func (f *fakeLifecycle) Finish(key, agent string, failed bool, notes string) {
	state := "completed"
	if failed {
		state = "failed"
	}
	f.add(strings.TrimSpace("finish " + key + " " + agent + " " + state + " " + notes))
}

func (f *fakeLifecycle) SetBlocked(key string, blocked bool) {
	if blocked {
		f.add("blocked " + key)
	} else {
		f.add("unblocked " + key)
	}
}

func (f *fakeLifecycle) SetHelping(key string, helping bool) {
	if helping {
		f.add("helping " + key)
	}
}

func (f *fakeLifecycle) Drop(key string) bool {
	f.add("drop " + key)
	return true
}

func (f *fakeLifecycle) got() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, "\n")
}

func completeEnvelope(t *testing.T, c gossip.TaskComplete) gossip.Envelope {
	t.Helper()
	c.Fence, c.CompletedAt = 1, time.Now().UTC()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return gossip.Envelope{Type: gossip.TypeTaskComplete, Data: data}
}

func TestOpPhases(t *testing.T) {
	const k = "task/github/o/r/3"
	cases := []struct {
		name   string
		events func(t *testing.T, p *opPhases)
		want   []string
	}{
		{"a script task on this agent", func(t *testing.T, p *opPhases) {
			p.placed(k, "me")
			p.accepted(k, "me")
			p.started("Execute", k, "me")
			p.returned(k, "me", nil)
			p.completed(gossip.TaskComplete{TaskKey: k, AgentID: "me", Success: true})
		}, []string{"advance " + k + " queued me", "advance " + k + " claimed me", "advance " + k + " executing me",
			"advance " + k + " reviewing me", "finish " + k + " me completed"}},
		{"an AI task plans, then runs commands; its completion is heard on the topic", func(t *testing.T, p *opPhases) {
			p.placed(k, "me")
			p.accepted(k, "me")
			p.started("ExecuteAI", k, "me")
			p.running(k)
			p.returned(k, "me", nil)
			p.observe(completeEnvelope(t, gossip.TaskComplete{TaskKey: k, AgentID: "me", Success: false, Message: "exit 1"}))
		}, []string{"advance " + k + " queued me", "advance " + k + " claimed me", "advance " + k + " planning me",
			"advance " + k + " executing me", "advance " + k + " reviewing me", "finish " + k + " me failed exit 1"}},
		{"a failed rung does not reach reviewing", func(t *testing.T, p *opPhases) {
			p.started("ExecuteAI", k, "me")
			p.returned(k, "me", errors.New("model down"))
			p.started("Execute", k, "me")
		}, []string{"advance " + k + " planning me", "advance " + k + " executing me"}},
		{"another agent's activities are not this node's", func(t *testing.T, p *opPhases) {
			p.placed(k, "other")
			p.accepted(k, "other")
			p.started("Execute", k, "other")
			p.returned(k, "other", nil)
		}, nil},
		{"nobody qualifies, then this agent is chosen", func(t *testing.T, p *opPhases) {
			p.selected(k, activities.SelectOutput{})
			p.selected(k, activities.SelectOutput{})
			p.selected(k, activities.SelectOutput{Found: true, AgentID: "me"})
			p.placed(k, "me")
		}, []string{"advance " + k + " queued ", "blocked " + k, "blocked " + k, "unblocked " + k, "advance " + k + " queued me"}},
		{"nobody qualifies, then another agent is chosen and finishes", func(t *testing.T, p *opPhases) {
			p.selected(k, activities.SelectOutput{})
			p.selected(k, activities.SelectOutput{Found: true, AgentID: "other"})
			p.completed(gossip.TaskComplete{TaskKey: k, AgentID: "other", Success: true})
		}, []string{"advance " + k + " queued ", "blocked " + k, "drop " + k, "drop " + k}},
		{"a choice made at once tracks nothing here", func(t *testing.T, p *opPhases) {
			p.selected(k, activities.SelectOutput{Found: true, AgentID: "other"})
		}, nil},
		{"helping another agent's task until it completes", func(t *testing.T, p *opPhases) {
			p.offered(k)
			p.offered(k)
			p.observe(completeEnvelope(t, gossip.TaskComplete{TaskKey: k, AgentID: "other", Success: true}))
		}, []string{"advance " + k + " planning me", "helping " + k, "finish " + k + " me completed"}},
		{"a long failure reason is cut", func(t *testing.T, p *opPhases) {
			p.completed(gossip.TaskComplete{TaskKey: k, AgentID: "me", Message: strings.Repeat("é", 150)})
		}, []string{"finish " + k + " me failed " + strings.Repeat("é", maxNotes/2)}},
		{"other messages on the topic are ignored", func(t *testing.T, p *opPhases) {
			p.observe(gossip.Envelope{Type: gossip.TypeTaskProgress, Data: json.RawMessage(`{}`)})
			p.observe(gossip.Envelope{Type: gossip.TypeTaskComplete, Data: json.RawMessage(`not json`)})
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			life := &fakeLifecycle{}
			c.events(t, newOpPhases("me", life, discardLogger()))
			if got, want := life.got(), strings.Join(c.want, "\n"); got != want {
				t.Errorf("tracker got\n%s\nwant\n%s", got, want)
			}
		})
	}
	t.Run("a node without an agent only follows waiting tasks", func(t *testing.T) {
		life := &fakeLifecycle{}
		p := newOpPhases("", life, discardLogger())
		p.placed(k, "")
		p.started("Execute", k, "")
		p.running(k)
		p.offered(k)
		p.selected(k, activities.SelectOutput{})
		if got, want := life.got(), "advance "+k+" queued \nblocked "+k; got != want {
			t.Errorf("tracker got\n%s\nwant\n%s", got, want)
		}
	})
}

// okRunner is a sandbox that succeeds at once.
type okRunner struct{}

func (okRunner) Run(context.Context, sandbox.Spec) (sandbox.Result, error) {
	return sandbox.Result{}, nil
}

// TestPhaseInterceptor runs the real accept and execution activities in
// Temporal's activity test environment with the interceptor the agent's
// workers use, and the sandbox runner wrapped as the worker wraps it.
func TestPhaseInterceptor(t *testing.T) {
	const k = "task/github/o/r/9"
	life := &fakeLifecycle{}
	ph := newOpPhases("me", life, discardLogger())
	running := newCountingRunner()
	running.Runner = okRunner{}
	running.phases.Store(ph)
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{&phaseInterceptor{phases: ph}}})
	env.RegisterActivity(&activities.Agent{Info: activities.AgentInfo{ID: "me", ExecutionTimeout: time.Minute}})
	env.RegisterActivity(&activities.Executor{Runner: running, DataDir: t.TempDir(), Limits: sandbox.Spec{Image: "img"}})
	var agents *activities.Agent
	var exe *activities.Executor
	if _, err := env.ExecuteActivity(agents.Accept, activities.AcceptInput{Key: k, AgentID: "me", Fence: 1, Claimed: time.Now()}); err != nil {
		t.Fatal(err)
	}
	v, err := env.ExecuteActivity(exe.Execute, activities.ExecuteInput{Key: k, AgentID: "me", Description: "```sh\ntrue\n```\n", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var res chorus.Result
	if err := v.Get(&res); err != nil || !res.Success {
		t.Fatalf("execution: %+v %v", res, err)
	}
	// A refused accept (another agent's task) moves nothing.
	if _, err := env.ExecuteActivity(agents.Accept, activities.AcceptInput{Key: "task/github/o/r/10", AgentID: "someone"}); err == nil {
		t.Fatal("accept of another agent's task succeeded")
	}
	want := []string{"advance " + k + " queued me", "advance " + k + " claimed me", "advance " + k + " executing me",
		"advance " + k + " executing me", "advance " + k + " reviewing me"}
	if got := life.got(); got != strings.Join(want, "\n") {
		t.Errorf("tracker got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

// claimTopic is a BACKBEAT topic that keeps the claims published on it.
type claimTopic struct {
	mu     sync.Mutex
	claims []gossip.StatusClaim
}

func (c *claimTopic) PublishBody(_ context.Context, b gossip.Body, _ gossip.Envelope) error {
	if sc, ok := b.(gossip.StatusClaim); ok {
		c.mu.Lock()
		c.claims = append(c.claims, sc)
		c.mu.Unlock()
	}
	return nil
}

func (c *claimTopic) Subscribe(func(gossip.Envelope, string)) (func(), error) { return func() {}, nil }

// states are the states of the claims published for key so far.
func (c *claimTopic) states(key string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, sc := range c.claims {
		if sc.TaskKey == key {
			out = append(out, sc.State+"/"+sc.Phase)
		}
	}
	return out
}

// TestPhasesOnARealNode drives a BACKBEAT node through a task's whole
// life, as the workers of one task feed it, and checks the claims it
// publishes: every phase, and the blocked state while nobody qualifies.
func TestPhasesOnARealNode(t *testing.T) {
	const k = "task/github/o/r/11"
	cfg := backbeat.DefaultConfig()
	cfg.ClusterID, cfg.AgentID, cfg.TempoBPM, cfg.BarLength, cfg.Budget = "c", "me", 600, 10, 50
	topic := &claimTopic{}
	bb, err := backbeat.New(cfg, topic)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- bb.Run(ctx) }()
	defer func() { cancel(); <-done }()

	ph := newOpPhases("me", bb, discardLogger())
	ph.selected(k, activities.SelectOutput{})
	ph.selected(k, activities.SelectOutput{Found: true, AgentID: "me"})
	ph.placed(k, "me")
	ph.accepted(k, "me")
	ph.started("ExecuteAI", k, "me")
	ph.running(k)
	ph.returned(k, "me", nil)
	ph.completed(gossip.TaskComplete{TaskKey: k, AgentID: "me", Success: true})
	want := []string{"idle/queued", "blocked/queued", "idle/queued", "planning/claimed", "planning/planning",
		"executing/executing", "reviewing/reviewing", "completed/done"}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		got := topic.states(k)
		if strings.Join(got, " ") == strings.Join(want, " ") {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("claims %v, want %v", got, want)
		case <-tick.C:
		}
	}
}
