package activities

import (
	"context"
	"time"
)

// AgentInfo is what an agent tells the workflow about itself when it takes
// a task: who it is, where its executions run, and its limits.
type AgentInfo struct {
	ID        string   `json:"id"`
	Role      string   `json:"role"`
	Expertise []string `json:"expertise,omitempty"`
	MaxTasks  int      `json:"max_tasks"`
	// TaskQueue is the agent's own queue; executions are sent there.
	TaskQueue string `json:"task_queue"`
	// ExecutionTimeout bounds one execution attempt.
	ExecutionTimeout time.Duration `json:"execution_timeout"`
	// HeartbeatTimeout is how long the workflow waits without a heartbeat
	// before it considers the agent dead.
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout"`
	// QueueTimeout is how long an execution may wait for the agent to pick
	// it up before the workflow selects again.
	QueueTimeout time.Duration `json:"queue_timeout"`
	// Models are the agent's model names for this task's role, primary
	// first; empty means the AI rung is skipped.
	Models []string `json:"models,omitempty"`
	// AIWallTime bounds one AI rung.
	AIWallTime time.Duration `json:"ai_wall_time,omitempty"`
	// MockEnabled lets the ladder end in simulated execution;
	// MockSucceeds is the success it reports (false unless configured).
	MockEnabled  bool `json:"mock_enabled,omitempty"`
	MockSucceeds bool `json:"mock_succeeds,omitempty"`
	// HelpWindow is how long the workflow collects help offers after a
	// help request.
	HelpWindow time.Duration `json:"help_window,omitempty"`
}

// IdentifyInput names the task being placed (for logs on the agent side).
type IdentifyInput struct {
	Key string `json:"key"`
}

// Agent answers for the local agent.
type Agent struct {
	Info AgentInfo
	// Announce, when set, publishes the claims Accept takes on.
	Announce Announcer
	// Metrics, when set, counts the placements.
	Metrics *Metrics
}

// AgentQueue returns the task queue name of an agent.
func AgentQueue(agentID string) string { return "chorus-agent-" + agentID }

// Identify returns the local agent's description. The worker that picks
// this activity up is the one that takes the task.
func (a *Agent) Identify(ctx context.Context, in IdentifyInput) (AgentInfo, error) {
	a.Metrics.event(taskPlaced)
	return a.Info, nil
}
