package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"chorus/activities"
)

// versionCollaboration gates the collaboration step.
const versionCollaboration = "collaboration"

// HelpPriority is the task priority from which the claiming agent always
// asks its peers for help (SPEC section 3, step 3).
const HelpPriority = 8

// defaultHelpWindow bounds how long offers are collected.
const defaultHelpWindow = 30 * time.Second

// needsHelp reports whether the SPEC's criteria for collaboration hold: a
// high priority, or required expertise the agent lacks.
func needsHelp(priority int, required []string, agent activities.AgentInfo) bool {
	if priority >= HelpPriority {
		return true
	}
	for _, e := range required {
		if !slices.Contains(agent.Expertise, e) {
			return true
		}
	}
	return false
}

// collaborate asks peers of the required role for help and collects their
// offers, arriving as signals, for a bounded window. A failed request is
// logged and the task goes on alone.
func (w *taskRun) collaborate(ctx workflow.Context, agent activities.AgentInfo) {
	roles := []string{agent.Role}
	if w.task.Role != "" {
		roles = []string{w.task.Role}
	}
	queue := agent.TaskQueue
	if w.replaceOnDeath {
		// The control queue: the execution queue's slots may all be busy.
		queue = activities.AgentControlQueue(agent.ID)
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              queue,
		ScheduleToStartTimeout: time.Minute,
		StartToCloseTimeout:    30 * time.Second,
		RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 2},
	})
	req := activities.HelpRequest{Key: w.st.Key, AgentID: agent.ID, Roles: roles, Expertise: w.task.Expertise, Priority: w.task.Priority}
	if w.replaceOnDeath {
		req.Issue = w.task.Number
	}
	if err := workflow.ExecuteActivity(actx, collabActs.RequestHelp, req).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("help request failed; going on alone", "key", w.st.Key, "error", err)
		return
	}
	window := agent.HelpWindow
	if window <= 0 {
		window = defaultHelpWindow
	}
	tctx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	timer := workflow.NewTimer(tctx, window)
	offers := workflow.GetSignalChannel(ctx, SignalHelpOffer)
	// Each accepted offer is reflected into the task's HMMM room while the
	// window runs; the window waits for the reflections before it closes.
	var reflections []workflow.Future
	defer func() {
		for _, f := range reflections {
			if err := f.Get(ctx, nil); err != nil && ctx.Err() == nil {
				workflow.GetLogger(ctx).Warn("reflecting a help offer into the room failed", "key", w.st.Key, "error", err)
			}
		}
	}()
	for done := false; !done; {
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(offers, func(c workflow.ReceiveChannel, _ bool) {
			var o activities.HelpOffer
			c.Receive(ctx, &o)
			if o.AgentID == "" || o.AgentID == agent.ID || slices.ContainsFunc(w.st.Helpers, func(h activities.HelpOffer) bool { return h.AgentID == o.AgentID }) {
				return
			}
			w.st.Helpers = append(w.st.Helpers, o)
			if w.replaceOnDeath {
				reflections = append(reflections, workflow.ExecuteActivity(actx, collabActs.ReflectOffer,
					activities.ReflectInput{Key: w.st.Key, Issue: w.task.Number, AgentID: agent.ID, Offer: o}))
			}
		})
		sel.AddFuture(timer, func(workflow.Future) { done = true })
		sel.Select(ctx)
		if ctx.Err() != nil {
			return
		}
	}
}
