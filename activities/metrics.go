package activities

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/temporal"

	"chorus"
	"chorus/ops"
)

// Metrics are the chorus_tasks_* metrics of the activities and the
// chorus_ai_* metrics of the AI rung's loop (the model calls themselves are
// measured by package ai). Build one per registry with NewMetrics and give
// it to every activity struct; a nil *Metrics records nothing. Labels are
// bounded: operations, outcomes, rungs and execution types, never a task
// key.
type Metrics struct {
	providerRequests *prometheus.CounterVec
	providerDuration *prometheus.HistogramVec
	claimed          prometheus.Counter
	claimConflicts   prometheus.Counter
	started          prometheus.Counter
	completed        *prometheus.CounterVec
	completedDur     *prometheus.HistogramVec
	failed           prometheus.Counter
	cancelled        prometheus.Counter
	released         prometheus.Counter
	executions       *prometheus.CounterVec
	executionDur     *prometheus.HistogramVec
	inFlight         *prometheus.GaugeVec
	commands         prometheus.Counter
	files            prometheus.Counter
	placements       prometheus.Counter
	helpRequests     *prometheus.CounterVec
	auditFailures    prometheus.Counter
	heartbeats       prometheus.Counter

	aiRuns        *prometheus.CounterVec
	aiSteps       prometheus.Counter
	aiCorrections prometheus.Counter
	aiBudget      *prometheus.CounterVec
}

// Provider operations (op label).
var providerOps = []string{"claim", "release", "start", "complete", "fail", "cancel"}

// Provider results (result label): a sentinel the provider returned, or ok.
var providerResults = []string{"ok", "already_claimed", "fenced", "not_found", "invalid", "error"}

// Rungs of the fallback ladder executed on this agent (rung label).
var rungs = []string{chorus.ExecScripted, chorus.ExecAI, chorus.ExecMock}

// Execution outcomes (outcome label of chorus_tasks_executions_total).
const (
	outcomeSuccess   = "success"
	outcomeFailure   = "failure"    // a Result with Success false
	outcomeNoContent = "no_content" // nothing to run for this rung
	outcomeError     = "error"      // an activity error (retried or not)
)

// AI rung outcomes beyond success and failure.
const (
	aiBudgetExhausted  = "budget_exhausted"
	aiModelUnavailable = "model_unavailable"
	aiModelGarbage     = "model_garbage"
)

// budgetLimits are the limits package budget names in its refusals.
var budgetLimits = []string{"task tokens", "task steps", "task wall time", "daily tokens", "daily calls"}

// NewMetrics registers the activities' metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	counter := func(sub, name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ops.Namespace, Subsystem: sub, Name: name, Help: help})
	}
	vec := func(sub, name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ops.Namespace, Subsystem: sub, Name: name, Help: help}, labels)
	}
	hist := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ops.Namespace, Subsystem: ops.CategoryTasks, Name: name, Help: help, Buckets: buckets}, labels)
	}
	t := ops.CategoryTasks
	m := &Metrics{
		providerRequests: vec(t, "provider_requests_total", "Calls of the task provider by the activities, by operation and result.", "op", "result"),
		providerDuration: hist("provider_request_duration_seconds", "Latency of task provider calls, by operation.", ops.LatencyBuckets(), "op"),
		claimed:          counter(t, "claimed_total", "Tasks this agent claimed (the claim won)."),
		claimConflicts:   counter(t, "claim_conflicts_total", "Claims lost to another agent (already claimed)."),
		started:          counter(t, "started_total", "Claimed tasks moved to working."),
		completed:        vec(t, "completed_total", "Tasks completed on the provider, by execution type and outcome (success, failure).", "execution_type", "outcome"),
		completedDur:     hist("completed_duration_seconds", "Execution duration reported with each completed task, by execution type.", ops.DurationBuckets(), "execution_type"),
		failed:           counter(t, "failed_total", "Tasks marked failed on the provider."),
		cancelled:        counter(t, "cancelled_total", "Tasks cancelled on an operator's request."),
		released:         counter(t, "released_total", "Claimed tasks given back to the provider."),
		executions:       vec(t, "executions_total", "Rungs of the fallback ladder executed on this agent, by rung (scripted, ai, mock) and outcome (success, failure, no_content, error).", "rung", "outcome"),
		executionDur:     hist("execution_duration_seconds", "How long a rung's execution took on this agent, by rung.", ops.DurationBuckets(), "rung"),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ops.Namespace, Subsystem: t, Name: "executions_in_flight",
			Help: "Executions running on this agent, by rung."}, []string{"rung"}),
		commands:      counter(t, "commands_executed_total", "Shell commands run in the sandbox by executions."),
		files:         counter(t, "files_generated_total", "Files left in workspaces by finished executions."),
		placements:    counter(t, "placements_total", "Times the task workflow asked this agent to identify itself for a task (it is about to take it)."),
		helpRequests:  vec(t, "help_requests_total", "Help requests published to peers, by result (ok, error).", "result"),
		auditFailures: counter(t, "audit_write_failures_total", "Task lifecycle events that could not be written to the audit log."),
		heartbeats:    counter(t, "heartbeats_total", "Activity heartbeats of running executions."),

		aiRuns:        vec(ops.CategoryAI, "rung_runs_total", "AI rung executions, by outcome (success, failure, budget_exhausted, model_unavailable, model_garbage, error).", "outcome"),
		aiSteps:       counter(ops.CategoryAI, "steps_total", "Model calls made by the AI rung's loop (one per step)."),
		aiCorrections: counter(ops.CategoryAI, "corrections_total", "Unusable model replies the AI rung asked the model to correct."),
		aiBudget:      vec(ops.CategoryAI, "budget_exhaustions_total", "AI rungs stopped by a budget, by limit (task_tokens, task_steps, task_wall_time, daily_tokens, daily_calls).", "limit"),
	}
	for _, op := range providerOps {
		m.providerDuration.WithLabelValues(op)
		for _, r := range providerResults {
			m.providerRequests.WithLabelValues(op, r)
		}
	}
	for _, typ := range append(rungs, chorus.ExecNone) {
		m.completedDur.WithLabelValues(typ)
		m.completed.WithLabelValues(typ, outcomeSuccess)
		m.completed.WithLabelValues(typ, outcomeFailure)
	}
	for _, rung := range rungs {
		m.executionDur.WithLabelValues(rung)
		m.inFlight.WithLabelValues(rung)
		for _, o := range []string{outcomeSuccess, outcomeFailure, outcomeNoContent, outcomeError} {
			m.executions.WithLabelValues(rung, o)
		}
	}
	for _, r := range []string{"ok", "error"} {
		m.helpRequests.WithLabelValues(r)
	}
	for _, o := range []string{outcomeSuccess, outcomeFailure, aiBudgetExhausted, aiModelUnavailable, aiModelGarbage, outcomeError} {
		m.aiRuns.WithLabelValues(o)
	}
	for _, l := range budgetLimits {
		m.aiBudget.WithLabelValues(limitLabel(l))
	}
	for _, c := range []prometheus.Collector{m.providerRequests, m.providerDuration, m.claimed, m.claimConflicts, m.started,
		m.completed, m.completedDur, m.failed, m.cancelled, m.released, m.executions, m.executionDur, m.inFlight,
		m.commands, m.files, m.placements, m.helpRequests, m.auditFailures, m.heartbeats,
		m.aiRuns, m.aiSteps, m.aiCorrections, m.aiBudget} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register activity metrics: %w", err)
		}
	}
	return m, nil
}

func limitLabel(l string) string { return strings.ReplaceAll(l, " ", "_") }

// providerCall records one provider call that started at start.
func (m *Metrics) providerCall(op string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.providerRequests.WithLabelValues(op, providerResult(err)).Inc()
	m.providerDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func providerResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, chorus.ErrAlreadyClaimed):
		return "already_claimed"
	case errors.Is(err, chorus.ErrFenced):
		return "fenced"
	case errors.Is(err, chorus.ErrNotFound):
		return "not_found"
	case errors.Is(err, chorus.ErrInvalid):
		return "invalid"
	}
	return "error"
}

// event is something the activities count.
type event int

const (
	taskStarted event = iota
	taskFailed
	taskCancelled
	taskReleased
	taskPlaced
	auditFailed
	heartbeat
	aiStep
	aiCorrection
)

// event counts e.
func (m *Metrics) event(e event) {
	if m == nil {
		return
	}
	[...]prometheus.Counter{
		taskStarted:   m.started,
		taskFailed:    m.failed,
		taskCancelled: m.cancelled,
		taskReleased:  m.released,
		taskPlaced:    m.placements,
		auditFailed:   m.auditFailures,
		heartbeat:     m.heartbeats,
		aiStep:        m.aiSteps,
		aiCorrection:  m.aiCorrections,
	}[e].Inc()
}

// claim counts a claim's outcome.
func (m *Metrics) claim(err error) {
	if m == nil {
		return
	}
	switch {
	case err == nil:
		m.claimed.Inc()
	case errors.Is(err, chorus.ErrAlreadyClaimed):
		m.claimConflicts.Inc()
	}
}

// completedTask counts a completion the provider acknowledged.
func (m *Metrics) completedTask(r chorus.Result) {
	if m == nil {
		return
	}
	outcome := outcomeSuccess
	if !r.Success {
		outcome = outcomeFailure
	}
	typ := r.ExecutionType
	if typ == "" {
		typ = chorus.ExecNone
	}
	m.completed.WithLabelValues(typ, outcome).Inc()
	m.completedDur.WithLabelValues(typ).Observe(float64(r.DurationMS) / 1000)
}

// helpRequested counts a help request.
func (m *Metrics) helpRequested(err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.helpRequests.WithLabelValues(result).Inc()
}

// execution starts timing one rung; the returned func records its end.
func (m *Metrics) execution(rung string) func(r chorus.Result, err error) {
	if m == nil {
		return func(chorus.Result, error) {}
	}
	start := time.Now()
	m.inFlight.WithLabelValues(rung).Inc()
	return func(r chorus.Result, err error) {
		m.inFlight.WithLabelValues(rung).Dec()
		m.executionDur.WithLabelValues(rung).Observe(time.Since(start).Seconds())
		outcome := outcomeSuccess
		switch {
		case err != nil && isType(err, ErrTypeNoRunnableContent):
			outcome = outcomeNoContent
		case err != nil:
			outcome = outcomeError
		case !r.Success:
			outcome = outcomeFailure
		}
		m.executions.WithLabelValues(rung, outcome).Inc()
		if err == nil {
			m.commands.Add(float64(len(r.CommandsExecuted)))
			m.files.Add(float64(len(r.FilesGenerated)))
		}
	}
}

// aiRun records the end of one AI rung.
func (m *Metrics) aiRun(r chorus.Result, err error) {
	if m == nil {
		return
	}
	outcome := outcomeSuccess
	switch {
	case isType(err, ErrTypeBudgetExhausted):
		outcome = aiBudgetExhausted
		for _, l := range budgetLimits {
			if strings.Contains(err.Error(), l) {
				m.aiBudget.WithLabelValues(limitLabel(l)).Inc()
				break
			}
		}
	case isType(err, ErrTypeModelUnavailable):
		outcome = aiModelUnavailable
	case isType(err, ErrTypeModelGarbage):
		outcome = aiModelGarbage
	case err != nil:
		outcome = outcomeError
	case !r.Success:
		outcome = outcomeFailure
	}
	m.aiRuns.WithLabelValues(outcome).Inc()
}

// isType reports whether err is an application error of type typ.
func isType(err error, typ string) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.Type() == typ
}
