package gossip_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"chorus"
	"chorus/gossip"
)

// validBodies holds one valid body of every message type.
func validBodies() []gossip.Body {
	key := "task/board/acme/api/7"
	ref := gossip.TaskRef{TaskKey: key, Repository: "acme/api"}
	dep := gossip.TaskRef{TaskKey: "task/board/acme/db/3", Repository: "acme/db"}
	return []gossip.Body{
		gossip.TaskAnnouncement{TaskKey: key, Title: "add /v2", Priority: 5, AnnouncedAt: now},
		gossip.TaskClaim{TaskKey: key, AgentID: "a", Fence: 1, ClaimedAt: now},
		gossip.TaskProgress{TaskKey: key, AgentID: "a", Status: chorus.StateWorking, Fence: 1, At: now},
		gossip.TaskComplete{TaskKey: key, AgentID: "a", Fence: 1, Success: true, DurationMS: 10, CompletedAt: now},
		gossip.CapabilityBroadcast{AgentID: "a", Role: "developer", MaxTasks: 2, Timestamp: now},
		gossip.AvailabilityBroadcast{NodeID: "a", MaxTasks: 2, Status: gossip.AvailabilityReady, Timestamp: now, Performance: 0.5},
		gossip.MetaDiscussion{TaskKey: key, Issue: 7, AgentID: "a", Kind: "seed", Text: "claimed", At: now},
		gossip.TaskHelpRequest{TaskKey: key, AgentID: "a", Roles: []string{"tester"}, Priority: 9},
		gossip.TaskHelpResponse{TaskKey: key, AgentID: "b", Role: "tester", MaxTasks: 1},
		gossip.CoordinationRequest{SessionID: "s1", Kind: "dependency", TaskKeys: []string{key}, At: now},
		gossip.CoordinationComplete{SessionID: "s1", Outcome: "resolved", Agreements: 2, At: now},
		gossip.DependencyAlert{Rule: "api_contract", Confidence: 0.8, Task: ref, DependsOn: dep, DetectedAt: now},
		gossip.EscalationTrigger{SessionID: "s1", Reason: "no consensus", RequiresHuman: true, At: now},
		gossip.RoleAnnouncement{AgentID: "a", Role: "developer", At: now},
		gossip.ExpertiseRequest{RequestID: "r1", AgentID: "a", Expertise: []string{"go"}},
		gossip.ExpertiseResponse{RequestID: "r1", AgentID: "b", Confidence: 0.7},
		gossip.StatusUpdate{AgentID: "a", Status: "idle", At: now},
		gossip.WorkAllocation{TaskKey: key, AgentID: "a", Score: 0.9, AllocatedBy: "workflow", At: now},
		gossip.RoleCollaboration{TaskKey: key, AgentID: "a", Roles: []string{"tester"}},
		gossip.MentorshipRequest{AgentID: "a", Topic: "sql"},
		gossip.MentorshipResponse{AgentID: "b", MenteeID: "a", Accepted: true},
		gossip.ProjectUpdate{ProjectID: "p", AgentID: "a", Summary: "on track", At: now},
		gossip.DeliverableReady{TaskKey: key, AgentID: "a", Kind: "patch", Ref: "/data/out/7.diff"},
		gossip.ContextFeedback{Address: "ucxl://a:developer@p:t/*^/x", AgentID: "a", Useful: true, Score: 1},
		gossip.ContextRequest{RequestID: "r2", AgentID: "a", Query: "schema"},
		gossip.ContextResponse{RequestID: "r2", AgentID: "b", Address: "ucxl://b:developer@p:t/*^/x", Version: 1, Content: "..."},
		gossip.ContextRelevance{Address: "ucxl://b:developer@p:t/*^/x", AgentID: "a", Relevance: 0.3},
		gossip.ElectionCandidacy{Term: 2, NodeID: "a", Score: 0.6, Components: gossip.ScoreComponents{Uptime: 1, Network: 0.5}, Trigger: "no_admin"},
		gossip.ElectionVote{Term: 2, Voter: "b", Candidate: "a"},
		gossip.ElectionWinner{Term: 2, Winner: "a", Score: 0.6, Votes: 3},
		gossip.AdminHeartbeat{Term: 2, Admin: "a", Seq: 9, Score: 0.6, At: now},
		gossip.BeatFrame{ClusterID: "c", BeatIndex: 120, Downbeat: true, Phase: gossip.PhasePlan, HLC: "1749..:0", DeadlineAt: now, TempoBPM: 2, WindowID: "w1"},
		gossip.StatusClaim{AgentID: "a", TaskKey: key, State: "executing", BeatIndex: 121, BeatsLeft: 3, Progress: 0.4},
		gossip.BarReport{ClusterID: "c", WindowID: "w1", Bar: 1, FromBeat: 120, ToBeat: 239, Agents: 2,
			States: []gossip.StateCount{{State: "executing", Count: 1}}, TempoBPM: 2},
	}
}

// TestEveryTypeHasABody checks the body registry against the type list: one
// body per type, each valid sample round-trips through an envelope, and a
// zero body is refused with the name of a field.
func TestEveryTypeHasABody(t *testing.T) {
	samples := map[gossip.MessageType]gossip.Body{}
	for _, b := range validBodies() {
		if _, dup := samples[b.MessageType()]; dup {
			t.Fatalf("two samples of %s", b.MessageType())
		}
		samples[b.MessageType()] = b
	}
	for _, typ := range gossip.MessageTypes() {
		zero := gossip.NewBody(typ)
		if zero == nil {
			t.Errorf("%s has no body type", typ)
			continue
		}
		if zero.MessageType() != typ {
			t.Errorf("NewBody(%s).MessageType() = %s", typ, zero.MessageType())
		}
		if err := zero.Validate(); err == nil || !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(err.Error(), ":") {
			t.Errorf("zero %s: Validate = %v, want an ErrInvalid naming a field", typ, err)
		}
		sample, ok := samples[typ]
		if !ok {
			t.Errorf("no valid sample of %s", typ)
			continue
		}
		if err := sample.Validate(); err != nil {
			t.Errorf("sample %s: %v", typ, err)
		}
		data, err := json.Marshal(sample)
		if err != nil {
			t.Fatal(err)
		}
		wire, err := gossip.Encode(gossip.Envelope{Type: typ, From: "12D3KooWPeer", Timestamp: now, Data: data})
		if err != nil {
			t.Fatalf("encode %s: %v", typ, err)
		}
		e, err := gossip.Decode(wire, now)
		if err != nil {
			t.Fatalf("decode %s: %v", typ, err)
		}
		got := gossip.NewBody(typ)
		if err := e.DecodeData(got); err != nil {
			t.Errorf("%s: DecodeData: %v", typ, err)
			continue
		}
		if g := reflect.ValueOf(got).Elem().Interface(); !reflect.DeepEqual(g, sample) {
			t.Errorf("%s round trip:\n got %+v\nwant %+v", typ, g, sample)
		}
	}
	if gossip.NewBody("task_steal") != nil {
		t.Error("NewBody of an unknown type is not nil")
	}
}

func TestBodyChecksNameTheField(t *testing.T) {
	key := "task/board/acme/api/7"
	tests := []struct {
		body gossip.Body
		want string
	}{
		{gossip.TaskClaim{TaskKey: "nope", AgentID: "a", Fence: 1, ClaimedAt: now}, "task_key"},
		{gossip.TaskClaim{TaskKey: key, AgentID: "a", Fence: 0, ClaimedAt: now}, "fence: 0 must be at least 1"},
		{gossip.TaskAnnouncement{TaskKey: key, Title: "t", Priority: 11, AnnouncedAt: now}, "priority: 11 is outside 0..10"},
		{gossip.AvailabilityBroadcast{NodeID: "a", MaxTasks: 1, Status: "ready", Timestamp: now, Performance: 1.5}, "performance: 1.5"},
		{gossip.DependencyAlert{Rule: "r", Confidence: 0.8, Task: gossip.TaskRef{TaskKey: key, Repository: "x"},
			DependsOn: gossip.TaskRef{TaskKey: key, Repository: "x"}, DetectedAt: now}, "depends_on.repository: must differ"},
		{gossip.CoordinationRequest{SessionID: "s", Kind: "party", TaskKeys: []string{key}, At: now}, `kind: "party"`},
		{gossip.ElectionCandidacy{Term: 1, NodeID: "a", Score: 0.5, Components: gossip.ScoreComponents{Uptime: 2}}, "components.uptime: 2"},
		{gossip.BeatFrame{ClusterID: "c", Phase: "dance", HLC: "h", DeadlineAt: now, TempoBPM: 2, WindowID: "w"}, `phase: "dance"`},
		{gossip.StatusClaim{AgentID: "a", State: "sleeping"}, `state: "sleeping"`},
		{gossip.BarReport{ClusterID: "c", FromBeat: 10, ToBeat: 5}, "to_beat: 5 is before from_beat 10"},
		{gossip.MetaDiscussion{AgentID: "a", Kind: "note", At: now, TaskKey: "bad"}, "task_key"},
	}
	for _, tt := range tests {
		err := tt.body.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate = %v, want it to mention %q", tt.body.MessageType(), err, tt.want)
		}
	}
}
