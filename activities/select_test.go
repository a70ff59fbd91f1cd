package activities_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"chorus"
	"chorus/activities"
	"chorus/selection"
)

type fixedPeers []selection.Candidate

func (f fixedPeers) Candidates() []selection.Candidate { return f }

var (
	selector *activities.Selector
	collab   *activities.Collaborator
)

func TestSelectScoresTheRegistry(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Selector{Peers: fixedPeers{
		{AgentID: "dev", Role: "developer", MaxTasks: 1, Performance: 0.5},
		{AgentID: "qa", Role: "tester", Expertise: []string{"go"}, MaxTasks: 2, Performance: 0.5},
	}})
	v, err := env.ExecuteActivity(selector.Select, activities.SelectInput{Key: key, Role: "tester", Expertise: []string{"go"}})
	if err != nil {
		t.Fatal(err)
	}
	var out activities.SelectOutput
	if err := v.Get(&out); err != nil {
		t.Fatal(err)
	}
	if !out.Found || out.AgentID != "qa" || out.Score != 0.95 || len(out.Scores) != 2 || out.Scores[1].AgentID != "dev" {
		t.Fatalf("select = %+v", out)
	}
	v, err = env.ExecuteActivity(selector.Select, activities.SelectInput{Key: key, Role: "tester", Expertise: []string{"go"}, Exclude: []string{"qa"}})
	if err != nil {
		t.Fatal(err)
	}
	out = activities.SelectOutput{}
	if err := v.Get(&out); err != nil {
		t.Fatal(err)
	}
	// dev scores 0.2 (no role, no expertise, idle) + 0.05: not qualified.
	if out.Found || out.AgentID != "" || len(out.Scores) != 1 || out.Scores[0].Qualified {
		t.Fatalf("select excluding qa = %+v", out)
	}
}

type announcer struct {
	mu       sync.Mutex
	in       []activities.AcceptInput
	estimate time.Time
}

func (a *announcer) AnnounceClaim(_ context.Context, in activities.AcceptInput, estimate time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.in, a.estimate = append(a.in, in), estimate
	return errors.New("no peers") // a failed announcement does not fail Accept
}

func TestAcceptAnnouncesAndRefusesAnotherAgentsTask(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	ann := &announcer{}
	info := activities.AgentInfo{ID: "a", Role: "developer", ExecutionTimeout: 5 * time.Minute}
	env.RegisterActivity(&activities.Agent{Info: info, Announce: ann})
	claimed := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	v, err := env.ExecuteActivity(agentAct.Accept, activities.AcceptInput{Key: key, Number: 7, AgentID: "a", Fence: 3, Claimed: claimed})
	if err != nil {
		t.Fatal(err)
	}
	var got activities.AgentInfo
	if err := v.Get(&got); err != nil || got.ID != "a" {
		t.Fatalf("accept = %+v, %v", got, err)
	}
	if len(ann.in) != 1 || ann.in[0].Fence != 3 || !ann.estimate.Equal(claimed.Add(5*time.Minute)) {
		t.Fatalf("announced %+v, estimate %v", ann.in, ann.estimate)
	}
	_, err = env.ExecuteActivity(agentAct.Accept, activities.AcceptInput{Key: key, AgentID: "b", Fence: 4})
	if err == nil || appErrType(t, err) != activities.ErrTypeInvalid || !strings.Contains(err.Error(), "agent_id") {
		t.Fatalf("accept for b on a = %v, want a non-retryable invalid agent_id", err)
	}
}

type rooms struct{ posts []activities.RoomPost }

func (r *rooms) PostToRoom(_ context.Context, p activities.RoomPost) error {
	r.posts = append(r.posts, p)
	return nil
}

func TestReflectOfferPostsToTheRoom(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	r := &rooms{}
	env.RegisterActivity(&activities.Collaborator{Rooms: r})
	in := activities.ReflectInput{Key: key, Issue: 7, AgentID: "a", Offer: activities.HelpOffer{AgentID: "b", Role: "tester", Expertise: []string{"go", "sql"}}}
	if _, err := env.ExecuteActivity(collab.ReflectOffer, in); err != nil {
		t.Fatal(err)
	}
	want := activities.RoomPost{Key: key, Issue: 7, AgentID: "a", Kind: "offer", Text: "b (role tester, expertise go, sql) offers help"}
	if len(r.posts) != 1 || r.posts[0] != want {
		t.Fatalf("posts = %+v, want %+v", r.posts, want)
	}
	env2 := s.NewTestActivityEnvironment()
	env2.RegisterActivity(&activities.Collaborator{})
	if _, err := env2.ExecuteActivity(collab.Escalate, activities.EscalateInput{Key: key}); err == nil || !strings.Contains(err.Error(), "no gossip node") {
		t.Fatalf("escalate without a node = %v", err)
	}
}

type progress struct {
	mu  sync.Mutex
	evs []activities.ProgressEvent
}

func (p *progress) PublishProgress(_ context.Context, ev activities.ProgressEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evs = append(p.evs, ev)
}

func TestProviderPublishesProgress(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	pub := &progress{}
	env.RegisterActivity(&activities.Provider{Tasks: newFakeTracker(), Progress: pub})
	if _, err := env.ExecuteActivity(prov.Claim, activities.ClaimInput{Key: key, AgentID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ExecuteActivity(prov.MarkWorking, activities.FenceInput{Key: key, Fence: 1, AgentID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ExecuteActivity(prov.Complete, activities.CompleteInput{Key: key, Fence: 9}); err == nil {
		t.Fatal("stale fence accepted")
	}
	if _, err := env.ExecuteActivity(prov.Complete, activities.CompleteInput{Key: key, Fence: 1, Result: chorus.Result{Success: true, AgentID: "a"}}); err != nil {
		t.Fatal(err)
	}
	if len(pub.evs) != 2 || pub.evs[0].Status != chorus.StateWorking || pub.evs[0].AgentID != "a" ||
		pub.evs[1].Status != chorus.StateCompleted || pub.evs[1].Result == nil || !pub.evs[1].Result.Success {
		t.Fatalf("progress = %+v, want working then completed (nothing for the refused write)", pub.evs)
	}
	if _, err := env.ExecuteActivity(prov.Cancel, activities.CancelInput{Key: key, Reason: "by operator", AgentID: "a", Fence: 1}); err != nil {
		t.Fatal(err)
	}
	if len(pub.evs) != 3 || pub.evs[2].Status != chorus.StateCancelled || pub.evs[2].AgentID != "a" || pub.evs[2].Reason != "by operator" {
		t.Fatalf("progress after cancel = %+v, want cancelled with the claim's agent", pub.evs)
	}
}
