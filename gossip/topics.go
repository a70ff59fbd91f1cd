package gossip

import (
	"strconv"
	"strings"
)

// Topic names (SPEC section 5).
const (
	// TopicCoordination carries task and availability traffic; every agent
	// joins it.
	TopicCoordination = "CHORUS/coordination/v1"
	// TopicMetaDiscussion carries HMMM: agents reasoning together about
	// help, dependencies and escalation.
	TopicMetaDiscussion = "hmmm/meta-discussion/v1"
	// TopicContextFeedback carries feedback on the context agents were
	// given.
	TopicContextFeedback = "CHORUS/context-feedback/v1"
	// TopicElection carries the admin election and the admin heartbeat.
	TopicElection = "CHORUS/election/v1"
	// TopicBackbeat carries the BACKBEAT pulse and reports.
	TopicBackbeat = "CHORUS/backbeat/v1"
)

// IssueRoom returns the topic of the meta-discussion room for issue n,
// CHORUS/meta/issue/<n>.
func IssueRoom(n int) string {
	return "CHORUS/meta/issue/" + strconv.Itoa(n)
}

// ParseIssueRoom returns the issue number of an IssueRoom topic name.
func ParseIssueRoom(topic string) (int, bool) {
	rest, ok := strings.CutPrefix(topic, "CHORUS/meta/issue/")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 1 || strconv.Itoa(n) != rest {
		return 0, false
	}
	return n, true
}

// RoleTopic returns the topic addressed to one role, CHORUS/roles/<role>/v1.
// The role should match [A-Za-z0-9_.-]+, as config.Validate enforces, so it
// cannot change the shape of the name.
func RoleTopic(role string) string {
	return "CHORUS/roles/" + role + "/v1"
}

// MessageType names what a message is; it selects the body type in
// Envelope.Data.
type MessageType string

// Coordination messages, on TopicCoordination.
const (
	TypeTaskAnnouncement      MessageType = "task_announcement"
	TypeTaskClaim             MessageType = "task_claim"
	TypeTaskProgress          MessageType = "task_progress"
	TypeTaskComplete          MessageType = "task_complete"
	TypeCapabilityBroadcast   MessageType = "capability_broadcast"
	TypeAvailabilityBroadcast MessageType = "availability_broadcast"
)

// HMMM messages, on TopicMetaDiscussion.
const (
	TypeMetaDiscussion       MessageType = "meta_discussion"
	TypeTaskHelpRequest      MessageType = "task_help_request"
	TypeTaskHelpResponse     MessageType = "task_help_response"
	TypeCoordinationRequest  MessageType = "coordination_request"
	TypeCoordinationComplete MessageType = "coordination_complete"
	TypeDependencyAlert      MessageType = "dependency_alert"
	TypeEscalationTrigger    MessageType = "escalation_trigger"
)

// Role-based messages. Their home is TopicCoordination, which every agent
// joins; a sender addressing particular roles (Envelope.ToRoles) publishes
// on each RoleTopic instead.
const (
	TypeRoleAnnouncement   MessageType = "role_announcement"
	TypeExpertiseRequest   MessageType = "expertise_request"
	TypeExpertiseResponse  MessageType = "expertise_response"
	TypeStatusUpdate       MessageType = "status_update"
	TypeWorkAllocation     MessageType = "work_allocation"
	TypeRoleCollaboration  MessageType = "role_collaboration"
	TypeMentorshipRequest  MessageType = "mentorship_request"
	TypeMentorshipResponse MessageType = "mentorship_response"
	TypeProjectUpdate      MessageType = "project_update"
	TypeDeliverableReady   MessageType = "deliverable_ready"
)

// Context feedback messages, on TopicContextFeedback.
const (
	TypeContextFeedback  MessageType = "context_feedback"
	TypeContextRequest   MessageType = "context_request"
	TypeContextResponse  MessageType = "context_response"
	TypeContextRelevance MessageType = "context_relevance"
)

// Election messages, on TopicElection.
const (
	TypeElectionCandidacy MessageType = "election_candidacy"
	TypeElectionVote      MessageType = "election_vote"
	TypeElectionWinner    MessageType = "election_winner"
	TypeAdminHeartbeat    MessageType = "admin_heartbeat"
)

// BACKBEAT messages, on TopicBackbeat (SPEC section 12). They are not among
// the SPEC's 31 types, which predate the pulse.
const (
	TypeBeatFrame   MessageType = "beat_frame"
	TypeStatusClaim MessageType = "status_claim"
	TypeBarReport   MessageType = "bar_report"
)

// MessageTypes returns all known message types, the SPEC's 31 in its order
// and then the three BACKBEAT types, as a new slice.
func MessageTypes() []MessageType {
	return []MessageType{
		TypeTaskAnnouncement, TypeTaskClaim, TypeTaskProgress, TypeTaskComplete,
		TypeCapabilityBroadcast, TypeAvailabilityBroadcast,
		TypeMetaDiscussion, TypeTaskHelpRequest, TypeTaskHelpResponse,
		TypeCoordinationRequest, TypeCoordinationComplete, TypeDependencyAlert,
		TypeEscalationTrigger,
		TypeRoleAnnouncement, TypeExpertiseRequest, TypeExpertiseResponse,
		TypeStatusUpdate, TypeWorkAllocation, TypeRoleCollaboration,
		TypeMentorshipRequest, TypeMentorshipResponse, TypeProjectUpdate,
		TypeDeliverableReady,
		TypeContextFeedback, TypeContextRequest, TypeContextResponse,
		TypeContextRelevance,
		TypeElectionCandidacy, TypeElectionVote, TypeElectionWinner,
		TypeAdminHeartbeat,
		TypeBeatFrame, TypeStatusClaim, TypeBarReport,
	}
}

// Topic returns the type's home topic, or "" for an unknown type.
func (t MessageType) Topic() string {
	switch t {
	case TypeTaskAnnouncement, TypeTaskClaim, TypeTaskProgress, TypeTaskComplete,
		TypeCapabilityBroadcast, TypeAvailabilityBroadcast:
		return TopicCoordination
	case TypeMetaDiscussion, TypeTaskHelpRequest, TypeTaskHelpResponse,
		TypeCoordinationRequest, TypeCoordinationComplete, TypeDependencyAlert,
		TypeEscalationTrigger:
		return TopicMetaDiscussion
	case TypeRoleAnnouncement, TypeExpertiseRequest, TypeExpertiseResponse,
		TypeStatusUpdate, TypeWorkAllocation, TypeRoleCollaboration,
		TypeMentorshipRequest, TypeMentorshipResponse, TypeProjectUpdate,
		TypeDeliverableReady:
		return TopicCoordination
	case TypeContextFeedback, TypeContextRequest, TypeContextResponse,
		TypeContextRelevance:
		return TopicContextFeedback
	case TypeElectionCandidacy, TypeElectionVote, TypeElectionWinner,
		TypeAdminHeartbeat:
		return TopicElection
	case TypeBeatFrame, TypeStatusClaim, TypeBarReport:
		return TopicBackbeat
	}
	return ""
}

// Valid reports whether t is one of the known message types.
func (t MessageType) Valid() bool { return t.Topic() != "" }
