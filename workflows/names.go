package workflows

// Names shared by workers, starters and workflow code.
const (
	// TaskQueue is the shared queue: task workflows and the provider and
	// identify activities run here. Executions go to each agent's own queue
	// (activities.AgentQueue).
	TaskQueue = "chorus-tasks"
	// TaskWorkflowName is the registered name of TaskWorkflow.
	TaskWorkflowName = "TaskWorkflow"
	// QueryStatus returns the workflow's TaskStatus.
	QueryStatus = "status"
	// SignalHelpOffer carries an activities.HelpOffer from a peer.
	SignalHelpOffer = "help_offer"
)

// Task statuses reported by the workflow.
const (
	StatusPending = "pending"
	// StatusWaiting: no agent qualifies yet; the workflow re-selects on a
	// durable timer.
	StatusWaiting   = "waiting"
	StatusClaimed   = "claimed"
	StatusWorking   = "working"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)
