package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"chorus/activities"
	"chorus/selection"
)

// Policy is the task workflow's failure policy, in one place.
type Policy struct {
	// MaxPlacements bounds how often a task is placed on an agent again
	// after an agent never picked its execution up.
	MaxPlacements int
	// MaxExecutionAttempts bounds retries of one execution (sandbox
	// failures, dead agents detected by heartbeat timeout).
	MaxExecutionAttempts int32
	// CompletionDeadline bounds how long completion is retried before the
	// task is marked failed instead.
	CompletionDeadline time.Duration
	// SelectRetry is the first wait before selecting again when no agent
	// qualifies; it doubles up to MaxSelectRetry.
	SelectRetry, MaxSelectRetry time.Duration
	// EscalateAfter is how long a task may find no qualified agent before
	// it is escalated to humans (it keeps waiting).
	EscalateAfter time.Duration
	// SuspectFor is how long an agent that died or did not accept is
	// passed over while others qualify.
	SuspectFor time.Duration
	// AcceptTimeout bounds how long the chosen agent may take to pick up
	// the claim on its control queue before it counts as unreachable.
	AcceptTimeout time.Duration
}

// DefaultPolicy is used by TaskWorkflow.
var DefaultPolicy = Policy{
	MaxPlacements:        3,
	MaxExecutionAttempts: 5,
	CompletionDeadline:   24 * time.Hour,
	// Broadcasts come every 30 s, so a new agent is heard within one;
	// polling faster would only repeat the same answer.
	SelectRetry:    10 * time.Second,
	MaxSelectRetry: time.Minute,
	// Long enough for a restarted agent to come back, short enough that a
	// task nobody can do reaches a human within the hour.
	EscalateAfter: 10 * time.Minute,
	// Three broadcast intervals: by then the registry has forgotten a
	// dead agent on its own.
	SuspectFor: 90 * time.Second,
	// A live agent polls its control queue continuously; 30 s covers a
	// worker restart's reconnect.
	AcceptTimeout: 30 * time.Second,
}

// Agent-side limits used when an agent does not report its own.
const (
	defaultExecutionTimeout = 10 * time.Minute
	defaultHeartbeatTimeout = 30 * time.Second
	defaultQueueTimeout     = 10 * time.Minute
)

// identifyOptions waits for any worker to take the task; no agent means
// waiting (with backoff), not failing.
func identifyOptions() workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
		},
	}
}

// providerOptions covers claim, mark-working, release and fail.
func providerOptions() workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			MaximumAttempts:    10,
		},
	}
}

// completeOptions retries completion until the provider acknowledges it.
func completeOptions(p Policy) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: p.CompletionDeadline,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	}
}

// executeOptions sends the execution to the agent's queue with heartbeats.
func executeOptions(p Policy, a activities.AgentInfo) workflow.ActivityOptions {
	exec := a.ExecutionTimeout
	if exec <= 0 {
		exec = defaultExecutionTimeout
	}
	hb := a.HeartbeatTimeout
	if hb <= 0 {
		hb = defaultHeartbeatTimeout
	}
	queue := a.QueueTimeout
	if queue <= 0 {
		queue = defaultQueueTimeout
	}
	return workflow.ActivityOptions{
		TaskQueue:              a.TaskQueue,
		ScheduleToStartTimeout: queue,
		// The sandbox enforces the execution timeout itself; the margin
		// covers workspace setup and container start.
		StartToCloseTimeout: exec + time.Minute,
		HeartbeatTimeout:    hb,
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        p.MaxExecutionAttempts,
			NonRetryableErrorTypes: []string{activities.ErrTypeNoRunnableContent},
		},
	}
}

// aiOptions runs one AI rung on the agent's queue. Transient failures
// (model unreachable, rate limited) are retried a little; a model that is
// missing, answers garbage or exhausts the budget moves the ladder down at
// once.
func aiOptions(a activities.AgentInfo) workflow.ActivityOptions {
	o := executeOptions(DefaultPolicy, a)
	wall := a.AIWallTime
	if wall <= 0 {
		wall = defaultExecutionTimeout
	}
	o.StartToCloseTimeout = wall + time.Minute
	o.RetryPolicy = &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    10 * time.Second,
		MaximumAttempts:    3,
		NonRetryableErrorTypes: []string{
			activities.ErrTypeModelUnavailable,
			activities.ErrTypeModelGarbage,
			activities.ErrTypeBudgetExhausted,
		},
	}
	return o
}

// mockOptions runs the mock rung: no sandbox, nothing to wait for.
func mockOptions(a activities.AgentInfo) workflow.ActivityOptions {
	o := executeOptions(DefaultPolicy, a)
	o.StartToCloseTimeout = 30 * time.Second
	o.HeartbeatTimeout = 0
	o.RetryPolicy = &temporal.RetryPolicy{MaximumAttempts: 3}
	return o
}

// acceptOptions hands the claim to the chosen agent's control queue; a
// dead agent is detected by the schedule-to-start timeout.
func acceptOptions(p Policy, agentID string) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		TaskQueue:              activities.AgentControlQueue(agentID),
		ScheduleToStartTimeout: p.AcceptTimeout,
		StartToCloseTimeout:    30 * time.Second,
		RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 2},
	}
}

// escalateOptions runs the escalation on any worker.
func escalateOptions() workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	}
}

// heartbeatFinal makes a heartbeat timeout end the activity instead of
// retrying it on the same (dead) agent's queue.
const heartbeatFinal = "TemporalTimeout:Heartbeat"

// rungOptions adapts a rung's options to the selection path: a lost agent
// ends the rung so the workflow can place the task elsewhere, and the
// execution waits in the agent's backlog at the task's priority.
func (w *taskRun) rungOptions(o workflow.ActivityOptions) workflow.ActivityOptions {
	if !w.replaceOnDeath {
		return o
	}
	rp := *o.RetryPolicy
	rp.NonRetryableErrorTypes = append(slices.Clone(rp.NonRetryableErrorTypes), heartbeatFinal)
	o.RetryPolicy = &rp
	o.Priority = temporal.Priority{PriorityKey: selection.PriorityKey(w.task.Priority, false)}
	return o
}

// localOptions turns the options of a short step into local activity
// options with the same timeouts and retries.
func localOptions(o workflow.ActivityOptions) workflow.LocalActivityOptions {
	return workflow.LocalActivityOptions{
		StartToCloseTimeout:    o.StartToCloseTimeout,
		ScheduleToCloseTimeout: o.ScheduleToCloseTimeout,
		RetryPolicy:            o.RetryPolicy,
	}
}
