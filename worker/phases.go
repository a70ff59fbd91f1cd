package main

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"

	"chorus/activities"
	"chorus/backbeat"
	"chorus/gossip"
)

// This file feeds the BACKBEAT tracker (SPEC section 12) with the life of
// the operations this worker takes part in. A task's steps run on several
// workers (the workflow's local activities where its workflow task runs,
// accept and execution on the chosen agent's queues, completion on any
// worker), so each phase is taken where it happens:
//
//   - queued, blocked: the selection step on this node found no qualified
//     agent; the task waits (blocked) until one is chosen; if that agent is
//     not this node's, the operation is dropped here (the chosen agent's
//     node tracks it from then on);
//   - queued, then claimed: the accept activity on this agent's control
//     queue begins (the task is placed here), then succeeds;
//   - planning: the AI rung begins on this agent's queue (the model plans
//     the commands); a script task has no planning of its own;
//   - executing: the script rung or the mock rung begins, or a sandbox
//     command of the AI rung starts;
//   - reviewing: an execution returned its result; the workflow checks it
//     and reports it;
//   - done: the task's completion (task_complete, from whichever worker
//     completed it: heard on the coordination topic, or published here).
//
// An agent that offered help on another agent's task follows it as an
// operation in the helping state until the task completes.

// lifecycle is the BACKBEAT node's side that opPhases feeds.
type lifecycle interface {
	Advance(key string, p backbeat.Phase, agentID string) error
	Finish(key, agentID string, failed bool, notes string)
	SetBlocked(key string, blocked bool)
	SetHelping(key string, helping bool)
	Drop(key string) bool
}

// maxNotes bounds the failure reason a claim carries.
const maxNotes = 200

// opPhases turns task events into tracker calls. Safe for concurrent use.
type opPhases struct {
	// agent is this worker's agent; "" for a node without one.
	agent  string
	beat   lifecycle
	logger *slog.Logger

	mu sync.Mutex
	// helping holds the tasks this agent offered help on, until they end;
	// waiting those this node's selection found no agent for.
	helping map[string]bool
	waiting map[string]bool
}

func newOpPhases(agent string, beat lifecycle, logger *slog.Logger) *opPhases {
	return &opPhases{agent: agent, beat: beat, logger: logger, helping: map[string]bool{}, waiting: map[string]bool{}}
}

func (p *opPhases) advance(key string, ph backbeat.Phase) {
	if err := p.beat.Advance(key, ph, p.agent); err != nil {
		// Phases only move forward: a repeated step (an activity retried
		// after its operation moved on) changes nothing.
		p.logger.Debug("backbeat ignored a phase", "task", key, "phase", ph, "error", err)
	}
}

func (p *opPhases) ours(agent string) bool { return p.agent != "" && agent == p.agent }

// selected is the outcome of a selection step run on this node.
func (p *opPhases) selected(key string, out activities.SelectOutput) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !out.Found {
		if !p.waiting[key] {
			p.waiting[key] = true
			if err := p.beat.Advance(key, backbeat.PhaseQueued, ""); err != nil {
				p.logger.Debug("backbeat ignored a waiting task", "task", key, "error", err)
			}
		}
		p.beat.SetBlocked(key, true)
		return
	}
	if !p.waiting[key] {
		return
	}
	delete(p.waiting, key)
	if p.ours(out.AgentID) {
		p.beat.SetBlocked(key, false)
		return
	}
	p.beat.Drop(key)
}

// placed: the accept activity for agent began on this node.
func (p *opPhases) placed(key, agent string) {
	// A task that waited on this node was unblocked when selection chose
	// this agent (selected), before the accept.
	if p.ours(agent) {
		p.advance(key, backbeat.PhaseQueued)
	}
}

// accepted: the accept activity succeeded.
func (p *opPhases) accepted(key, agent string) {
	if p.ours(agent) {
		p.advance(key, backbeat.PhaseClaimed)
	}
}

// started: an execution rung (activity name) began for agent.
func (p *opPhases) started(activityName, key, agent string) {
	if !p.ours(agent) {
		return
	}
	if activityName == "ExecuteAI" {
		p.advance(key, backbeat.PhasePlanning)
		return
	}
	p.advance(key, backbeat.PhaseExecuting)
}

// running: a sandbox run for key started on this agent.
func (p *opPhases) running(key string) {
	if p.agent != "" {
		p.advance(key, backbeat.PhaseExecuting)
	}
}

// returned: an execution rung returned a result (err nil) or failed.
func (p *opPhases) returned(key, agent string, err error) {
	if err == nil && p.ours(agent) {
		p.advance(key, backbeat.PhaseReviewing)
	}
}

// offered: this agent offered help on another agent's task.
func (p *opPhases) offered(key string) {
	if p.agent == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.helping[key] {
		return
	}
	p.helping[key] = true
	p.advance(key, backbeat.PhasePlanning)
	p.beat.SetHelping(key, true)
}

// completed: the task ended, as c tells.
func (p *opPhases) completed(c gossip.TaskComplete) {
	p.mu.Lock()
	defer p.mu.Unlock()
	helping := p.helping[c.TaskKey]
	delete(p.helping, c.TaskKey)
	delete(p.waiting, c.TaskKey)
	notes := c.Message
	if len(notes) > maxNotes {
		notes = strings.ToValidUTF8(notes[:maxNotes], "")
	}
	switch {
	case p.ours(c.AgentID):
		p.beat.Finish(c.TaskKey, c.AgentID, !c.Success, notes)
	case helping:
		p.beat.Finish(c.TaskKey, p.agent, !c.Success, notes)
	default:
		// Another agent finished it: whatever this node followed of it
		// (a placement that moved on) is that agent's to report.
		p.beat.Drop(c.TaskKey)
	}
}

// observe takes the task events heard on the coordination topic.
func (p *opPhases) observe(e gossip.Envelope) {
	if e.Type != gossip.TypeTaskComplete {
		return
	}
	var c gossip.TaskComplete
	if err := e.DecodeData(&c); err != nil {
		p.logger.Debug("backbeat ignored a completion", "error", err)
		return
	}
	p.completed(c)
}

// phaseInterceptor reports the accept and execution activities of this
// agent's queues to opPhases as they begin and return.
type phaseInterceptor struct {
	interceptor.WorkerInterceptorBase
	phases *opPhases
}

func (i *phaseInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	a := &phaseActivity{phases: i.phases}
	a.Next = next
	return a
}

type phaseActivity struct {
	interceptor.ActivityInboundInterceptorBase
	phases *opPhases
}

// opKey is the context key of the task an execution activity runs for.
type opKey struct{}

func (a *phaseActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	name := activity.GetInfo(ctx).ActivityType.Name
	if len(in.Args) != 1 {
		return a.Next.ExecuteActivity(ctx, in)
	}
	switch arg := in.Args[0].(type) {
	case activities.AcceptInput:
		a.phases.placed(arg.Key, arg.AgentID)
		res, err := a.Next.ExecuteActivity(ctx, in)
		if err == nil {
			a.phases.accepted(arg.Key, arg.AgentID)
		}
		return res, err
	case activities.ExecuteInput:
		return a.execution(ctx, in, name, arg)
	case activities.AIInput:
		return a.execution(ctx, in, name, arg.ExecuteInput)
	case activities.MockInput:
		return a.execution(ctx, in, name, arg.ExecuteInput)
	}
	return a.Next.ExecuteActivity(ctx, in)
}

func (a *phaseActivity) execution(ctx context.Context, in *interceptor.ExecuteActivityInput, name string, ex activities.ExecuteInput) (any, error) {
	a.phases.started(name, ex.Key, ex.AgentID)
	res, err := a.Next.ExecuteActivity(context.WithValue(ctx, opKey{}, ex.Key), in)
	a.phases.returned(ex.Key, ex.AgentID, err)
	return res, err
}

// opOf is the task an execution activity's context runs for, "" outside one.
func opOf(ctx context.Context) string {
	key, _ := ctx.Value(opKey{}).(string)
	return key
}
