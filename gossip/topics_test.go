package gossip_test

import (
	"regexp"
	"testing"

	"chorus/gossip"
)

func TestMessageTypes(t *testing.T) {
	types := gossip.MessageTypes()
	if len(types) != 34 {
		t.Fatalf("%d message types, want the 31 of SPEC section 5 and 3 BACKBEAT types", len(types))
	}
	seen := make(map[gossip.MessageType]bool)
	name := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	for _, typ := range types {
		if seen[typ] {
			t.Errorf("%s listed twice", typ)
		}
		seen[typ] = true
		if !typ.Valid() || typ.Topic() == "" || !name.MatchString(string(typ)) {
			t.Errorf("%q: valid %v, topic %q", typ, typ.Valid(), typ.Topic())
		}
	}
	types[0] = "changed"
	if gossip.MessageTypes()[0] != gossip.TypeTaskAnnouncement {
		t.Error("MessageTypes returns shared state")
	}
}

func TestHomeTopics(t *testing.T) {
	tests := []struct {
		typ  gossip.MessageType
		want string
	}{
		{gossip.TypeTaskAnnouncement, "CHORUS/coordination/v1"},
		{gossip.TypeAvailabilityBroadcast, "CHORUS/coordination/v1"},
		{gossip.TypeTaskHelpRequest, "hmmm/meta-discussion/v1"},
		{gossip.TypeEscalationTrigger, "hmmm/meta-discussion/v1"},
		{gossip.TypeRoleAnnouncement, "CHORUS/coordination/v1"},
		{gossip.TypeDeliverableReady, "CHORUS/coordination/v1"},
		{gossip.TypeContextRelevance, "CHORUS/context-feedback/v1"},
		{gossip.TypeElectionVote, "CHORUS/election/v1"},
		{gossip.TypeAdminHeartbeat, "CHORUS/election/v1"},
		{"task_steal", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := tt.typ.Topic(); got != tt.want {
			t.Errorf("%q.Topic() = %q, want %q", tt.typ, got, tt.want)
		}
	}
}

func TestTopicNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{gossip.TopicCoordination, "CHORUS/coordination/v1"},
		{gossip.TopicMetaDiscussion, "hmmm/meta-discussion/v1"},
		{gossip.TopicContextFeedback, "CHORUS/context-feedback/v1"},
		{gossip.TopicElection, "CHORUS/election/v1"},
		{gossip.TopicBackbeat, "CHORUS/backbeat/v1"},
		{gossip.IssueRoom(42), "CHORUS/meta/issue/42"},
		{gossip.RoleTopic("developer"), "CHORUS/roles/developer/v1"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("topic %q, want %q", tt.got, tt.want)
		}
	}
}

func TestParseIssueRoom(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
		ok   bool
	}{{gossip.IssueRoom(42), 42, true}, {"CHORUS/meta/issue/0", 0, false}, {"CHORUS/meta/issue/07", 0, false},
		{"CHORUS/meta/issue/x", 0, false}, {"hmmm/meta-discussion/v1", 0, false}, {"", 0, false}} {
		if got, ok := gossip.ParseIssueRoom(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("ParseIssueRoom(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
