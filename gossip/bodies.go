package gossip

import (
	"fmt"
	"time"

	"chorus"
)

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

// Validate names the first bad field.
func (p TaskProgress) Validate() error {
	if _, err := chorus.ParseTaskKey(p.TaskKey); err != nil {
		return fmt.Errorf("task_key: %w", err)
	}
	switch {
	case p.AgentID == "":
		return fmt.Errorf("%w: agent_id: missing", chorus.ErrInvalid)
	case !p.Status.Valid():
		return fmt.Errorf("%w: status: %.64q is not a task state", chorus.ErrInvalid, p.Status)
	case p.Fence < 0:
		return fmt.Errorf("%w: fence: %d is negative", chorus.ErrInvalid, p.Fence)
	case p.At.IsZero():
		return fmt.Errorf("%w: at: missing", chorus.ErrInvalid)
	}
	return nil
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
}

// Validate names the first bad field. CurrentTasks may exceed MaxTasks for
// a while after an operator lowers the limit, so that is not checked.
func (a AvailabilityBroadcast) Validate() error {
	switch {
	case a.NodeID == "":
		return fmt.Errorf("%w: node_id: missing", chorus.ErrInvalid)
	case a.MaxTasks < 1:
		return fmt.Errorf("%w: max_tasks: %d must be at least 1", chorus.ErrInvalid, a.MaxTasks)
	case a.CurrentTasks < 0:
		return fmt.Errorf("%w: current_tasks: %d is negative", chorus.ErrInvalid, a.CurrentTasks)
	case a.Status != AvailabilityReady && a.Status != AvailabilityWorking && a.Status != AvailabilityBusy:
		return fmt.Errorf("%w: status: %.64q must be ready, working or busy", chorus.ErrInvalid, a.Status)
	case a.Timestamp.IsZero():
		return fmt.Errorf("%w: timestamp: missing", chorus.ErrInvalid)
	}
	return nil
}
