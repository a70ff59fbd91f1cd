package gossip

import (
	"fmt"
	"math"
	"slices"
	"time"

	"chorus"
)

// Body is the typed data of one message type. Every message type has
// exactly one Body type (see NewBody); the validator decodes the data of
// every received message into it and runs Validate, so a handler never
// sees a body that does not decode.
type Body interface {
	// MessageType is the type the body travels as.
	MessageType() MessageType
	// Validate names the first missing or impossible field.
	Validate() error
}

// NewBody returns a pointer to a zero body for t, or nil for an unknown
// type.
func NewBody(t MessageType) Body {
	switch t {
	case TypeTaskAnnouncement:
		return &TaskAnnouncement{}
	case TypeTaskClaim:
		return &TaskClaim{}
	case TypeTaskProgress:
		return &TaskProgress{}
	case TypeTaskComplete:
		return &TaskComplete{}
	case TypeCapabilityBroadcast:
		return &CapabilityBroadcast{}
	case TypeAvailabilityBroadcast:
		return &AvailabilityBroadcast{}
	case TypeMetaDiscussion:
		return &MetaDiscussion{}
	case TypeTaskHelpRequest:
		return &TaskHelpRequest{}
	case TypeTaskHelpResponse:
		return &TaskHelpResponse{}
	case TypeCoordinationRequest:
		return &CoordinationRequest{}
	case TypeCoordinationComplete:
		return &CoordinationComplete{}
	case TypeDependencyAlert:
		return &DependencyAlert{}
	case TypeEscalationTrigger:
		return &EscalationTrigger{}
	case TypeRoleAnnouncement:
		return &RoleAnnouncement{}
	case TypeExpertiseRequest:
		return &ExpertiseRequest{}
	case TypeExpertiseResponse:
		return &ExpertiseResponse{}
	case TypeStatusUpdate:
		return &StatusUpdate{}
	case TypeWorkAllocation:
		return &WorkAllocation{}
	case TypeRoleCollaboration:
		return &RoleCollaboration{}
	case TypeMentorshipRequest:
		return &MentorshipRequest{}
	case TypeMentorshipResponse:
		return &MentorshipResponse{}
	case TypeProjectUpdate:
		return &ProjectUpdate{}
	case TypeDeliverableReady:
		return &DeliverableReady{}
	case TypeContextFeedback:
		return &ContextFeedback{}
	case TypeContextRequest:
		return &ContextRequest{}
	case TypeContextResponse:
		return &ContextResponse{}
	case TypeContextRelevance:
		return &ContextRelevance{}
	case TypeElectionCandidacy:
		return &ElectionCandidacy{}
	case TypeElectionVote:
		return &ElectionVote{}
	case TypeElectionWinner:
		return &ElectionWinner{}
	case TypeAdminHeartbeat:
		return &AdminHeartbeat{}
	case TypeBeatFrame:
		return &BeatFrame{}
	case TypeStatusClaim:
		return &StatusClaim{}
	case TypeBarReport:
		return &BarReport{}
	}
	return nil
}

// fieldCheck is one rule of a Validate method: when bad, the body is
// refused with the field's name and why.
type fieldCheck struct {
	bad   bool
	field string
	why   string
}

// firstBad returns the first failing check as an ErrInvalid error.
func firstBad(checks ...fieldCheck) error {
	for _, c := range checks {
		if c.bad {
			return fmt.Errorf("%w: %s: %s", chorus.ErrInvalid, c.field, c.why)
		}
	}
	return nil
}

func missing(s string, field string) fieldCheck {
	return fieldCheck{s == "", field, "missing"}
}

func missingTime(t time.Time, field string) fieldCheck {
	return fieldCheck{t.IsZero(), field, "missing"}
}

func badKey(key, field string) fieldCheck {
	if key == "" {
		return fieldCheck{true, field, "missing"}
	}
	_, err := chorus.ParseTaskKey(key)
	return fieldCheck{err != nil, field, fmt.Sprintf("%.80q is not a task key", key)}
}

func badFraction(v float64, field string) fieldCheck {
	return fieldCheck{v < 0 || v > 1 || v != v, field, fmt.Sprintf("%v must be within 0..1", v)}
}

func badPriority(p int, field string) fieldCheck {
	return fieldCheck{p < 0 || p > chorus.MaxPriority, field, fmt.Sprintf("%d is outside 0..%d", p, chorus.MaxPriority)}
}

// ----- coordination -----

// TaskAnnouncement tells the network a task exists (the admin's intake).
type TaskAnnouncement struct {
	TaskKey    string   `json:"task_key"`
	Title      string   `json:"title"`
	Repository string   `json:"repository,omitempty"`
	Priority   int      `json:"priority"`
	Role       string   `json:"role,omitempty"`
	Expertise  []string `json:"expertise,omitempty"`
	TaskType   string   `json:"task_type,omitempty"`
	ProjectID  string   `json:"project_id,omitempty"`
	// Dependencies are the task keys this task waits for.
	Dependencies []string  `json:"dependencies,omitempty"`
	AnnouncedAt  time.Time `json:"announced_at"`
}

func (TaskAnnouncement) MessageType() MessageType { return TypeTaskAnnouncement }

// Validate names the first bad field.
func (b TaskAnnouncement) Validate() error {
	return firstBad(badKey(b.TaskKey, "task_key"), missing(b.Title, "title"), badPriority(b.Priority, "priority"),
		missingTime(b.AnnouncedAt, "announced_at"))
}

// TaskClaim says an agent holds a task under a fencing token.
type TaskClaim struct {
	TaskKey string `json:"task_key"`
	AgentID string `json:"agent_id"`
	Fence   int64  `json:"fence"`
	// ClaimedAt is when the provider accepted the claim.
	ClaimedAt           time.Time `json:"claimed_at"`
	EstimatedCompletion time.Time `json:"estimated_completion,omitzero"`
}

func (TaskClaim) MessageType() MessageType { return TypeTaskClaim }

// Validate names the first bad field.
func (b TaskClaim) Validate() error {
	return firstBad(badKey(b.TaskKey, "task_key"), missing(b.AgentID, "agent_id"),
		fieldCheck{b.Fence < 1, "fence", fmt.Sprintf("%d must be at least 1", b.Fence)}, missingTime(b.ClaimedAt, "claimed_at"))
}

// TaskProgress is the body of a task_progress message: where an agent is
// with a task it holds.
type TaskProgress struct {
	// TaskKey is the task's key in chorus.TaskKey.String form.
	TaskKey string           `json:"task_key"`
	AgentID string           `json:"agent_id"`
	Status  chorus.TaskState `json:"status"`
	// Fence is the claim's fencing token; peers ignore progress with a
	// fence older than one they have seen.
	Fence int64     `json:"fence"`
	At    time.Time `json:"at"`
	// EstimatedCompletion is when the agent expects to finish, if known.
	EstimatedCompletion time.Time `json:"estimated_completion,omitzero"`
}

func (TaskProgress) MessageType() MessageType { return TypeTaskProgress }

// Validate names the first bad field.
func (p TaskProgress) Validate() error {
	if _, err := chorus.ParseTaskKey(p.TaskKey); err != nil {
		return fmt.Errorf("task_key: %w", err)
	}
	return firstBad(missing(p.AgentID, "agent_id"),
		fieldCheck{!p.Status.Valid(), "status", fmt.Sprintf("%.64q is not a task state", p.Status)},
		fieldCheck{p.Fence < 0, "fence", fmt.Sprintf("%d is negative", p.Fence)},
		missingTime(p.At, "at"))
}

// TaskComplete reports a task's end on its provider.
type TaskComplete struct {
	TaskKey       string    `json:"task_key"`
	AgentID       string    `json:"agent_id"`
	Fence         int64     `json:"fence"`
	Success       bool      `json:"success"`
	ExecutionType string    `json:"execution_type,omitempty"`
	DurationMS    int64     `json:"duration_ms"`
	Message       string    `json:"message,omitempty"`
	CompletedAt   time.Time `json:"completed_at"`
}

func (TaskComplete) MessageType() MessageType { return TypeTaskComplete }

// Validate names the first bad field.
func (b TaskComplete) Validate() error {
	return firstBad(badKey(b.TaskKey, "task_key"), missing(b.AgentID, "agent_id"),
		fieldCheck{b.DurationMS < 0, "duration_ms", fmt.Sprintf("%d is negative", b.DurationMS)}, missingTime(b.CompletedAt, "completed_at"))
}

// AvailabilityStatus is how busy an agent says it is.
type AvailabilityStatus string

// Availability statuses.
const (
	AvailabilityReady   AvailabilityStatus = "ready"
	AvailabilityWorking AvailabilityStatus = "working"
	AvailabilityBusy    AvailabilityStatus = "busy"
)

// AvailabilityBroadcast is the body of an availability_broadcast message,
// sent by every agent every 30 s.
type AvailabilityBroadcast struct {
	NodeID           string             `json:"node_id"`
	AvailableForWork bool               `json:"available_for_work"`
	CurrentTasks     int                `json:"current_tasks"`
	MaxTasks         int                `json:"max_tasks"`
	LastActivity     time.Time          `json:"last_activity"`
	Status           AvailabilityStatus `json:"status"`
	Timestamp        time.Time          `json:"timestamp"`
	// Performance is the agent's success record, 0..1 (completed tasks
	// over finished tasks; 0.5 before its first).
	Performance float64 `json:"performance,omitempty"`
}

func (AvailabilityBroadcast) MessageType() MessageType { return TypeAvailabilityBroadcast }

// Validate names the first bad field. CurrentTasks may exceed MaxTasks for
// a while after an operator lowers the limit, so that is not checked.
func (a AvailabilityBroadcast) Validate() error {
	return firstBad(missing(a.NodeID, "node_id"),
		fieldCheck{a.MaxTasks < 1, "max_tasks", fmt.Sprintf("%d must be at least 1", a.MaxTasks)},
		fieldCheck{a.CurrentTasks < 0, "current_tasks", fmt.Sprintf("%d is negative", a.CurrentTasks)},
		fieldCheck{a.Status != AvailabilityReady && a.Status != AvailabilityWorking && a.Status != AvailabilityBusy,
			"status", fmt.Sprintf("%.64q must be ready, working or busy", a.Status)},
		badFraction(a.Performance, "performance"),
		missingTime(a.Timestamp, "timestamp"))
}

// ----- HMMM -----

// MetaDiscussion is one message in an HMMM conversation, usually in an
// issue's room (IssueRoom).
type MetaDiscussion struct {
	// TaskKey is the task the discussion is about, if any.
	TaskKey string `json:"task_key,omitempty"`
	// Issue is the issue number of the room.
	Issue   int    `json:"issue,omitempty"`
	AgentID string `json:"agent_id"`
	// Kind is what the message does: seed (the room's first message, at
	// claim), offer (a help offer reflected from the workflow), note,
	// question, answer, proposal, agreement, objection.
	Kind string    `json:"kind"`
	Text string    `json:"text"`
	At   time.Time `json:"at"`
	// MessageID names the message within its thread, so a re-sent copy
	// (after a loss before the mesh formed) is recognised as the same
	// message; empty for messages that are never re-sent.
	MessageID string `json:"message_id,omitempty"`
	// Order, on a coordination proposal, is the order of the session's
	// task keys the plan proposes: each one after those before it.
	Order []string `json:"order,omitempty"`
	// Template marks a proposal whose plan is the built-in template
	// because no model was reachable or configured.
	Template bool `json:"template,omitempty"`
}

func (MetaDiscussion) MessageType() MessageType { return TypeMetaDiscussion }

// Validate names the first bad field.
func (b MetaDiscussion) Validate() error {
	return firstBad(missing(b.AgentID, "agent_id"), missing(b.Kind, "kind"), missingTime(b.At, "at"),
		fieldCheck{b.TaskKey != "" && badKey(b.TaskKey, "task_key").bad, "task_key", fmt.Sprintf("%.80q is not a task key", b.TaskKey)},
		fieldCheck{b.Issue < 0, "issue", fmt.Sprintf("%d is negative", b.Issue)},
		badKeys(b.Order, "order"))
}

// badKeys fails on the first entry of keys that is not a task key.
func badKeys(keys []string, field string) fieldCheck {
	for i, k := range keys {
		if c := badKey(k, fmt.Sprintf("%s[%d]", field, i)); c.bad {
			return c
		}
	}
	return fieldCheck{}
}

// TaskHelpRequest asks the agents of some roles for help with a task
// (SPEC section 3, step 3).
type TaskHelpRequest struct {
	TaskKey   string   `json:"task_key"`
	AgentID   string   `json:"agent_id"`
	Roles     []string `json:"roles"`
	Expertise []string `json:"required_expertise,omitempty"`
	Priority  int      `json:"priority"`
	// Room is the task's HMMM room, where offers are reflected.
	Room string `json:"room,omitempty"`
}

func (TaskHelpRequest) MessageType() MessageType { return TypeTaskHelpRequest }

// Validate names the first bad field.
func (b TaskHelpRequest) Validate() error {
	return firstBad(badKey(b.TaskKey, "task_key"), missing(b.AgentID, "agent_id"), badPriority(b.Priority, "priority"))
}

// TaskHelpResponse is a peer's offer of help.
type TaskHelpResponse struct {
	TaskKey      string   `json:"task_key"`
	AgentID      string   `json:"agent_id"`
	PeerID       string   `json:"peer_id,omitempty"`
	Role         string   `json:"role"`
	Expertise    []string `json:"expertise,omitempty"`
	CurrentTasks int      `json:"current_tasks"`
	MaxTasks     int      `json:"max_tasks"`
}

func (TaskHelpResponse) MessageType() MessageType { return TypeTaskHelpResponse }

// Validate names the first bad field.
func (b TaskHelpResponse) Validate() error {
	return firstBad(badKey(b.TaskKey, "task_key"), missing(b.AgentID, "agent_id"),
		fieldCheck{b.CurrentTasks < 0, "current_tasks", fmt.Sprintf("%d is negative", b.CurrentTasks)})
}

// CoordinationRequest opens a coordination session (SPEC section 7).
type CoordinationRequest struct {
	SessionID string `json:"session_id"`
	// Kind is dependency, conflict or planning.
	Kind         string    `json:"kind"`
	TaskKeys     []string  `json:"task_keys"`
	Participants []string  `json:"participants"`
	Reason       string    `json:"reason,omitempty"`
	At           time.Time `json:"at"`
	// Owner is the agent that opened the session and decides its outcome
	// (the admin for detected dependencies).
	Owner string `json:"owner,omitempty"`
}

func (CoordinationRequest) MessageType() MessageType { return TypeCoordinationRequest }

// Validate names the first bad field.
func (b CoordinationRequest) Validate() error {
	return firstBad(missing(b.SessionID, "session_id"),
		fieldCheck{b.Kind != "dependency" && b.Kind != "conflict" && b.Kind != "planning", "kind", fmt.Sprintf("%.32q must be dependency, conflict or planning", b.Kind)},
		fieldCheck{len(b.TaskKeys) == 0, "task_keys", "missing"}, badKeys(b.TaskKeys, "task_keys"), missingTime(b.At, "at"))
}

// CoordinationComplete closes a coordination session.
type CoordinationComplete struct {
	SessionID string `json:"session_id"`
	// Outcome is resolved, escalated or expired.
	Outcome    string    `json:"outcome"`
	Plan       string    `json:"plan,omitempty"`
	Agreements int       `json:"agreements"`
	At         time.Time `json:"at"`
	// Kind and TaskKeys repeat the session's request, so a node that
	// missed it can still record the outcome.
	Kind     string   `json:"kind,omitempty"`
	TaskKeys []string `json:"task_keys,omitempty"`
	// Template marks a plan that is the built-in template (no model).
	Template bool `json:"template,omitempty"`
}

func (CoordinationComplete) MessageType() MessageType { return TypeCoordinationComplete }

// Validate names the first bad field.
func (b CoordinationComplete) Validate() error {
	return firstBad(missing(b.SessionID, "session_id"),
		fieldCheck{b.Outcome != "resolved" && b.Outcome != "escalated" && b.Outcome != "expired", "outcome", fmt.Sprintf("%.32q must be resolved, escalated or expired", b.Outcome)},
		missingTime(b.At, "at"))
}

// TaskRef names a task in cross-task messages.
type TaskRef struct {
	TaskKey    string `json:"task_key"`
	Repository string `json:"repository"`
	Title      string `json:"title,omitempty"`
}

// DependencyAlert reports a likely dependency between tasks of two
// repositories (SPEC section 7).
type DependencyAlert struct {
	// Rule is the rule that matched: api_contract, database_schema,
	// configuration, security, or a custom rule's name.
	Rule       string    `json:"rule"`
	Confidence float64   `json:"confidence"`
	Task       TaskRef   `json:"task"`
	DependsOn  TaskRef   `json:"depends_on"`
	Reason     string    `json:"reason,omitempty"`
	DetectedAt time.Time `json:"detected_at"`
}

func (DependencyAlert) MessageType() MessageType { return TypeDependencyAlert }

// Validate names the first bad field.
func (b DependencyAlert) Validate() error {
	return firstBad(missing(b.Rule, "rule"), badFraction(b.Confidence, "confidence"),
		badKey(b.Task.TaskKey, "task.task_key"), badKey(b.DependsOn.TaskKey, "depends_on.task_key"),
		fieldCheck{b.Task.Repository != "" && b.Task.Repository == b.DependsOn.Repository, "depends_on.repository", "must differ from task.repository"},
		missingTime(b.DetectedAt, "detected_at"))
}

// EscalationTrigger hands a coordination problem to humans.
type EscalationTrigger struct {
	SessionID     string    `json:"session_id,omitempty"`
	TaskKeys      []string  `json:"task_keys,omitempty"`
	Reason        string    `json:"reason"`
	RequiresHuman bool      `json:"requires_human"`
	At            time.Time `json:"at"`
	// The session being escalated, for the humans who pick it up: its
	// kind, participants, the last plan proposed, how many messages it
	// took and how many participants agreed in the end.
	Kind         string    `json:"kind,omitempty"`
	Participants []string  `json:"participants,omitempty"`
	Plan         string    `json:"plan,omitempty"`
	Messages     int       `json:"messages,omitempty"`
	Agreements   int       `json:"agreements,omitempty"`
	OpenedAt     time.Time `json:"opened_at,omitzero"`
}

func (EscalationTrigger) MessageType() MessageType { return TypeEscalationTrigger }

// Validate names the first bad field.
func (b EscalationTrigger) Validate() error {
	return firstBad(missing(b.Reason, "reason"), missingTime(b.At, "at"),
		fieldCheck{b.Messages < 0, "messages", fmt.Sprintf("%d is negative", b.Messages)},
		fieldCheck{b.Agreements < 0, "agreements", fmt.Sprintf("%d is negative", b.Agreements)},
		badKeys(b.TaskKeys, "task_keys"))
}

// ----- role-based -----

// RoleAnnouncement states an agent's role and what it brings.
type RoleAnnouncement struct {
	AgentID        string    `json:"agent_id"`
	Role           string    `json:"role"`
	Expertise      []string  `json:"expertise,omitempty"`
	Capabilities   []string  `json:"capabilities,omitempty"`
	Specialization string    `json:"specialization,omitempty"`
	At             time.Time `json:"at"`
}

func (RoleAnnouncement) MessageType() MessageType { return TypeRoleAnnouncement }

// Validate names the first bad field.
func (b RoleAnnouncement) Validate() error {
	return firstBad(missing(b.AgentID, "agent_id"), missing(b.Role, "role"), missingTime(b.At, "at"))
}

// ExpertiseRequest asks who knows something.
type ExpertiseRequest struct {
	RequestID string   `json:"request_id"`
	AgentID   string   `json:"agent_id"`
	Expertise []string `json:"expertise"`
	TaskKey   string   `json:"task_key,omitempty"`
	Question  string   `json:"question,omitempty"`
}

func (ExpertiseRequest) MessageType() MessageType { return TypeExpertiseRequest }

// Validate names the first bad field.
func (b ExpertiseRequest) Validate() error {
	return firstBad(missing(b.RequestID, "request_id"), missing(b.AgentID, "agent_id"),
		fieldCheck{len(b.Expertise) == 0, "expertise", "missing"})
}

// ExpertiseResponse answers an ExpertiseRequest.
type ExpertiseResponse struct {
	RequestID  string   `json:"request_id"`
	AgentID    string   `json:"agent_id"`
	Expertise  []string `json:"expertise"`
	Answer     string   `json:"answer,omitempty"`
	Confidence float64  `json:"confidence"`
}

func (ExpertiseResponse) MessageType() MessageType { return TypeExpertiseResponse }

// Validate names the first bad field.
func (b ExpertiseResponse) Validate() error {
	return firstBad(missing(b.RequestID, "request_id"), missing(b.AgentID, "agent_id"), badFraction(b.Confidence, "confidence"))
}

// StatusUpdate is an agent's free-form status.
type StatusUpdate struct {
	AgentID string    `json:"agent_id"`
	Status  string    `json:"status"`
	TaskKey string    `json:"task_key,omitempty"`
	Message string    `json:"message,omitempty"`
	At      time.Time `json:"at"`
}

func (StatusUpdate) MessageType() MessageType { return TypeStatusUpdate }

// Validate names the first bad field.
func (b StatusUpdate) Validate() error {
	return firstBad(missing(b.AgentID, "agent_id"), missing(b.Status, "status"), missingTime(b.At, "at"))
}

// WorkAllocation records which agent the selection step chose for a task.
type WorkAllocation struct {
	TaskKey string  `json:"task_key"`
	AgentID string  `json:"agent_id"`
	Score   float64 `json:"score"`
	// AllocatedBy is the agent or workflow that decided.
	AllocatedBy string `json:"allocated_by"`
	// Term is the admin's election term when the admin decided, as a
	// fencing token; 0 otherwise.
	Term uint64    `json:"term,omitempty"`
	At   time.Time `json:"at"`
}

func (WorkAllocation) MessageType() MessageType { return TypeWorkAllocation }

// Validate names the first bad field.
func (b WorkAllocation) Validate() error {
	return firstBad(badKey(b.TaskKey, "task_key"), missing(b.AgentID, "agent_id"), badFraction(b.Score, "score"),
		missing(b.AllocatedBy, "allocated_by"), missingTime(b.At, "at"))
}

// RoleCollaboration proposes that agents of several roles work together.
type RoleCollaboration struct {
	TaskKey  string   `json:"task_key"`
	AgentID  string   `json:"agent_id"`
	Roles    []string `json:"roles"`
	Proposal string   `json:"proposal,omitempty"`
}

func (RoleCollaboration) MessageType() MessageType { return TypeRoleCollaboration }

// Validate names the first bad field.
func (b RoleCollaboration) Validate() error {
	return firstBad(badKey(b.TaskKey, "task_key"), missing(b.AgentID, "agent_id"), fieldCheck{len(b.Roles) == 0, "roles", "missing"})
}

// MentorshipRequest asks for a mentor in some area.
type MentorshipRequest struct {
	AgentID   string   `json:"agent_id"`
	Topic     string   `json:"topic"`
	Expertise []string `json:"expertise,omitempty"`
}

func (MentorshipRequest) MessageType() MessageType { return TypeMentorshipRequest }

// Validate names the first bad field.
func (b MentorshipRequest) Validate() error {
	return firstBad(missing(b.AgentID, "agent_id"), missing(b.Topic, "topic"))
}

// MentorshipResponse accepts or declines a MentorshipRequest.
type MentorshipResponse struct {
	AgentID  string `json:"agent_id"`
	MenteeID string `json:"mentee_id"`
	Accepted bool   `json:"accepted"`
	Message  string `json:"message,omitempty"`
}

func (MentorshipResponse) MessageType() MessageType { return TypeMentorshipResponse }

// Validate names the first bad field.
func (b MentorshipResponse) Validate() error {
	return firstBad(missing(b.AgentID, "agent_id"), missing(b.MenteeID, "mentee_id"))
}

// ProjectUpdate summarises a project's state.
type ProjectUpdate struct {
	ProjectID string    `json:"project_id"`
	AgentID   string    `json:"agent_id"`
	Summary   string    `json:"summary"`
	At        time.Time `json:"at"`
}

func (ProjectUpdate) MessageType() MessageType { return TypeProjectUpdate }

// Validate names the first bad field.
func (b ProjectUpdate) Validate() error {
	return firstBad(missing(b.ProjectID, "project_id"), missing(b.AgentID, "agent_id"), missingTime(b.At, "at"))
}

// DeliverableReady says a task produced something others can use.
type DeliverableReady struct {
	TaskKey string `json:"task_key"`
	AgentID string `json:"agent_id"`
	// Kind is what was produced: patch, report, artifact, ...
	Kind string `json:"kind"`
	// Ref points at it (a path on the agent, a URL, a UCXL address).
	Ref     string `json:"ref"`
	Summary string `json:"summary,omitempty"`
}

func (DeliverableReady) MessageType() MessageType { return TypeDeliverableReady }

// Validate names the first bad field.
func (b DeliverableReady) Validate() error {
	return firstBad(badKey(b.TaskKey, "task_key"), missing(b.AgentID, "agent_id"), missing(b.Kind, "kind"), missing(b.Ref, "ref"))
}

// ----- context feedback -----

// ContextFeedback rates context an agent was given.
type ContextFeedback struct {
	// Address is the context's UCXL address.
	Address string  `json:"address"`
	AgentID string  `json:"agent_id"`
	TaskKey string  `json:"task_key,omitempty"`
	Useful  bool    `json:"useful"`
	Score   float64 `json:"score"`
	Comment string  `json:"comment,omitempty"`
}

func (ContextFeedback) MessageType() MessageType { return TypeContextFeedback }

// Validate names the first bad field.
func (b ContextFeedback) Validate() error {
	return firstBad(missing(b.Address, "address"), missing(b.AgentID, "agent_id"), badFraction(b.Score, "score"))
}

// ContextRequest asks for context at an address or matching a query.
type ContextRequest struct {
	RequestID string `json:"request_id"`
	AgentID   string `json:"agent_id"`
	TaskKey   string `json:"task_key,omitempty"`
	Address   string `json:"address,omitempty"`
	Query     string `json:"query,omitempty"`
}

func (ContextRequest) MessageType() MessageType { return TypeContextRequest }

// Validate names the first bad field.
func (b ContextRequest) Validate() error {
	return firstBad(missing(b.RequestID, "request_id"), missing(b.AgentID, "agent_id"),
		fieldCheck{b.Address == "" && b.Query == "", "address", "missing (or give a query)"})
}

// ContextResponse answers a ContextRequest.
type ContextResponse struct {
	RequestID string `json:"request_id"`
	AgentID   string `json:"agent_id"`
	Address   string `json:"address"`
	Version   int    `json:"version"`
	Content   string `json:"content"`
}

func (ContextResponse) MessageType() MessageType { return TypeContextResponse }

// Validate names the first bad field.
func (b ContextResponse) Validate() error {
	return firstBad(missing(b.RequestID, "request_id"), missing(b.AgentID, "agent_id"), missing(b.Address, "address"))
}

// ContextRelevance scores how relevant context is to a task.
type ContextRelevance struct {
	Address   string  `json:"address"`
	AgentID   string  `json:"agent_id"`
	TaskKey   string  `json:"task_key,omitempty"`
	Relevance float64 `json:"relevance"`
}

func (ContextRelevance) MessageType() MessageType { return TypeContextRelevance }

// Validate names the first bad field.
func (b ContextRelevance) Validate() error {
	return firstBad(missing(b.Address, "address"), missing(b.AgentID, "agent_id"), badFraction(b.Relevance, "relevance"))
}

// ----- election -----

// ScoreComponents are the five parts of a candidate's score (SPEC section
// 6), each 0..1, weighted uptime 0.30, capabilities 0.20, resources 0.20,
// network 0.15, experience 0.15.
type ScoreComponents struct {
	Uptime       float64 `json:"uptime"`
	Capabilities float64 `json:"capabilities"`
	Resources    float64 `json:"resources"`
	Network      float64 `json:"network"`
	Experience   float64 `json:"experience"`
}

func (c ScoreComponents) validate(prefix string) error {
	return firstBad(badFraction(c.Uptime, prefix+".uptime"), badFraction(c.Capabilities, prefix+".capabilities"),
		badFraction(c.Resources, prefix+".resources"), badFraction(c.Network, prefix+".network"),
		badFraction(c.Experience, prefix+".experience"))
}

// ElectionCandidacy puts a node forward for admin in a term.
type ElectionCandidacy struct {
	Term       uint64          `json:"term"`
	NodeID     string          `json:"node_id"`
	Score      float64         `json:"score"`
	Components ScoreComponents `json:"components"`
	// Trigger is why the election started: heartbeat_timeout, no_admin,
	// split_brain, quorum, manual.
	Trigger string `json:"trigger,omitempty"`
	// Override asks every node to take part even while it hears a live
	// admin (a manual or split-brain election); without it only nodes
	// without an admin join.
	Override bool `json:"override,omitempty"`
}

func (ElectionCandidacy) MessageType() MessageType { return TypeElectionCandidacy }

// Validate names the first bad field.
func (b ElectionCandidacy) Validate() error {
	if err := firstBad(fieldCheck{b.Term == 0, "term", "must be at least 1"}, missing(b.NodeID, "node_id"),
		badFraction(b.Score, "score")); err != nil {
		return err
	}
	return b.Components.validate("components")
}

// ElectionVote is one node's vote in a term.
type ElectionVote struct {
	Term      uint64 `json:"term"`
	Voter     string `json:"voter"`
	Candidate string `json:"candidate"`
}

func (ElectionVote) MessageType() MessageType { return TypeElectionVote }

// Validate names the first bad field.
func (b ElectionVote) Validate() error {
	return firstBad(fieldCheck{b.Term == 0, "term", "must be at least 1"}, missing(b.Voter, "voter"), missing(b.Candidate, "candidate"))
}

// ElectionWinner announces the admin of a term.
type ElectionWinner struct {
	Term   uint64  `json:"term"`
	Winner string  `json:"winner"`
	Score  float64 `json:"score"`
	Votes  int     `json:"votes"`
}

func (ElectionWinner) MessageType() MessageType { return TypeElectionWinner }

// Validate names the first bad field.
func (b ElectionWinner) Validate() error {
	return firstBad(fieldCheck{b.Term == 0, "term", "must be at least 1"}, missing(b.Winner, "winner"), badFraction(b.Score, "score"),
		fieldCheck{b.Votes < 0, "votes", fmt.Sprintf("%d is negative", b.Votes)})
}

// AdminHeartbeat is the admin's periodic proof of life (every 5 s).
type AdminHeartbeat struct {
	Term  uint64    `json:"term"`
	Admin string    `json:"admin"`
	Seq   uint64    `json:"seq"`
	Score float64   `json:"score"`
	At    time.Time `json:"at"`
}

func (AdminHeartbeat) MessageType() MessageType { return TypeAdminHeartbeat }

// Validate names the first bad field.
func (b AdminHeartbeat) Validate() error {
	return firstBad(fieldCheck{b.Term == 0, "term", "must be at least 1"}, missing(b.Admin, "admin"),
		badFraction(b.Score, "score"), missingTime(b.At, "at"))
}

// ----- BACKBEAT -----

// Beat phases of a BeatFrame.
const (
	PhasePlan    = "plan"
	PhaseExecute = "execute"
	PhaseReview  = "review"
)

// BeatFrame is the admin's pulse, one per beat (SPEC section 12).
type BeatFrame struct {
	ClusterID string `json:"cluster_id"`
	BeatIndex int64  `json:"beat_index"`
	// Downbeat marks the first beat of a bar.
	Downbeat bool   `json:"downbeat"`
	Phase    string `json:"phase"`
	// HLC is the hybrid logical clock of the frame.
	HLC        string    `json:"hlc"`
	DeadlineAt time.Time `json:"deadline_at"`
	TempoBPM   float64   `json:"tempo_bpm"`
	WindowID   string    `json:"window_id"`
}

func (BeatFrame) MessageType() MessageType { return TypeBeatFrame }

// Validate names the first bad field.
func (b BeatFrame) Validate() error {
	return firstBad(missing(b.ClusterID, "cluster_id"),
		fieldCheck{b.BeatIndex < 0, "beat_index", fmt.Sprintf("%d is negative", b.BeatIndex)},
		fieldCheck{b.Phase != PhasePlan && b.Phase != PhaseExecute && b.Phase != PhaseReview, "phase", fmt.Sprintf("%.32q must be plan, execute or review", b.Phase)},
		missing(b.HLC, "hlc"), missingTime(b.DeadlineAt, "deadline_at"),
		fieldCheck{!(b.TempoBPM > 0), "tempo_bpm", fmt.Sprintf("%v must be positive", b.TempoBPM)},
		missing(b.WindowID, "window_id"))
}

// StatusClaim is an agent's claim about one operation at a beat.
type StatusClaim struct {
	AgentID string `json:"agent_id"`
	TaskKey string `json:"task_key,omitempty"`
	// State is idle, planning, executing, reviewing, completed, failed,
	// blocked or helping.
	State     string `json:"state"`
	BeatIndex int64  `json:"beat_index"`
	// BeatsLeft is the operation's beat budget: beats it expects to need.
	BeatsLeft int     `json:"beats_left"`
	Progress  float64 `json:"progress"`
	HLC       string  `json:"hlc,omitempty"`
	Notes     string  `json:"notes,omitempty"`
	// Phase is the operation's lifecycle phase (queued, claimed,
	// planning, executing, reviewing, done), finer than State.
	Phase string `json:"phase,omitempty"`
	// Overrun is set once the operation has used more beats than its
	// budget (BeatsLeft then stays 0).
	Overrun bool `json:"overrun,omitempty"`
	// DriftMS is the agent's latest tempo_drift_ms: how far the last beat
	// frame arrived from where its local beat clock expected it.
	DriftMS float64 `json:"tempo_drift_ms,omitempty"`
}

func (StatusClaim) MessageType() MessageType { return TypeStatusClaim }

// ClaimStates are the states a StatusClaim may report.
var claimStates = []string{"idle", "planning", "executing", "reviewing", "completed", "failed", "blocked", "helping"}

// Validate names the first bad field.
func (b StatusClaim) Validate() error {
	known := false
	for _, s := range claimStates {
		known = known || s == b.State
	}
	return firstBad(missing(b.AgentID, "agent_id"),
		fieldCheck{!known, "state", fmt.Sprintf("%.32q must be one of idle, planning, executing, reviewing, completed, failed, blocked, helping", b.State)},
		fieldCheck{b.BeatIndex < 0, "beat_index", fmt.Sprintf("%d is negative", b.BeatIndex)},
		fieldCheck{b.BeatsLeft < 0, "beats_left", fmt.Sprintf("%d is negative", b.BeatsLeft)},
		badFraction(b.Progress, "progress"),
		fieldCheck{b.Phase != "" && !slices.Contains(opPhases, b.Phase), "phase",
			fmt.Sprintf("%.32q must be one of queued, claimed, planning, executing, reviewing, done", b.Phase)},
		fieldCheck{math.IsNaN(b.DriftMS) || math.IsInf(b.DriftMS, 0), "tempo_drift_ms", fmt.Sprintf("%v is not a number", b.DriftMS)})
}

// opPhases are the operation phases a StatusClaim may report.
var opPhases = []string{"queued", "claimed", "planning", "executing", "reviewing", "done"}

// StateCount is how many claims of a bar reported one state.
type StateCount struct {
	State string `json:"state"`
	Count int    `json:"count"`
}

// BarReport is the admin's summary of one bar (120 beats by default).
type BarReport struct {
	ClusterID string `json:"cluster_id"`
	WindowID  string `json:"window_id"`
	Bar       int64  `json:"bar"`
	FromBeat  int64  `json:"from_beat"`
	ToBeat    int64  `json:"to_beat"`
	Agents    int    `json:"agents"`
	// States counts the bar's latest claim per operation by state, sorted
	// by state.
	States []StateCount `json:"states,omitempty"`
	// Overruns counts operations that used more beats than budgeted.
	Overruns   int     `json:"overruns"`
	MaxDriftMS float64 `json:"max_drift_ms"`
	TempoBPM   float64 `json:"tempo_bpm"`
	// Claims counts the StatusClaims the admin took during the bar.
	Claims int `json:"claims"`
}

func (BarReport) MessageType() MessageType { return TypeBarReport }

// Validate names the first bad field.
func (b BarReport) Validate() error {
	return firstBad(missing(b.ClusterID, "cluster_id"),
		fieldCheck{b.Bar < 0, "bar", fmt.Sprintf("%d is negative", b.Bar)},
		fieldCheck{b.ToBeat < b.FromBeat, "to_beat", fmt.Sprintf("%d is before from_beat %d", b.ToBeat, b.FromBeat)},
		fieldCheck{b.Agents < 0, "agents", fmt.Sprintf("%d is negative", b.Agents)},
		fieldCheck{b.Claims < 0, "claims", fmt.Sprintf("%d is negative", b.Claims)})
}
