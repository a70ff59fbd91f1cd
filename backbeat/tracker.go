package backbeat

import (
	"fmt"
	"maps"
	"slices"

	"chorus"
	"chorus/gossip"
)

// Phase is where an operation (a task this agent works on) is in its life
// (SPEC section 12). Phases only move forward, except that an operation may
// be claimed again (a task placed again after its agent never started it).
type Phase string

const (
	PhaseQueued    Phase = "queued"
	PhaseClaimed   Phase = "claimed"
	PhasePlanning  Phase = "planning"
	PhaseExecuting Phase = "executing"
	PhaseReviewing Phase = "reviewing"
	PhaseDone      Phase = "done"
)

// Phases returns the six phases in order.
func Phases() []Phase {
	return []Phase{PhaseQueued, PhaseClaimed, PhasePlanning, PhaseExecuting, PhaseReviewing, PhaseDone}
}

func (p Phase) rank() int { return slices.Index(Phases(), p) }

// StatusClaim states (SPEC section 12).
const (
	ClaimIdle      = "idle"
	ClaimPlanning  = "planning"
	ClaimExecuting = "executing"
	ClaimReviewing = "reviewing"
	ClaimCompleted = "completed"
	ClaimFailed    = "failed"
	ClaimBlocked   = "blocked"
	ClaimHelping   = "helping"
)

// ClaimStates returns the eight claim states.
func ClaimStates() []string {
	return []string{ClaimIdle, ClaimPlanning, ClaimExecuting, ClaimReviewing, ClaimCompleted, ClaimFailed, ClaimBlocked, ClaimHelping}
}

// TrackerConfig configures the operations tracker.
type TrackerConfig struct {
	// AgentID signs the claims of operations that name no agent, and the
	// idle claims.
	AgentID string
	// BarLength is the number of beats in a bar: claims for every active
	// operation are emitted once a bar.
	BarLength int
	// Budget is the beat budget of an operation begun without one: the
	// beats it is expected to need from its first phase to done.
	Budget int
	// Abandon, when positive, is how many of its budgets an operation may
	// stay open before the tracker forgets it (see AbandonBudgets); 0
	// keeps every operation until it finishes.
	Abandon int
}

// Validate names the first unusable field.
func (c TrackerConfig) Validate() error {
	switch {
	case c.AgentID == "":
		return fmt.Errorf("%w: AgentID: missing", chorus.ErrInvalid)
	case c.BarLength < 1:
		return fmt.Errorf("%w: BarLength: %d must be at least 1", chorus.ErrInvalid, c.BarLength)
	case c.Budget < 1:
		return fmt.Errorf("%w: Budget: %d must be at least 1", chorus.ErrInvalid, c.Budget)
	case c.Abandon < 0:
		return fmt.Errorf("%w: Abandon: %d is negative", chorus.ErrInvalid, c.Abandon)
	}
	return nil
}

// Operation is one tracked operation.
type Operation struct {
	TaskKey string `json:"task_key"`
	AgentID string `json:"agent_id"`
	Phase   Phase  `json:"phase"`
	// State is the claim state it reports.
	State string `json:"state"`
	// Budget is the beats the operation is expected to need; BeatsUsed
	// the beats it has existed for; BeatsLeft the budget not used yet.
	Budget    int  `json:"budget_beats"`
	BeatsUsed int  `json:"beats_used"`
	BeatsLeft int  `json:"beats_left"`
	Overrun   bool `json:"overrun"`
	// SinceBeat is the beat at which the operation entered its phase.
	SinceBeat int64 `json:"since_beat"`
	Blocked   bool  `json:"blocked,omitempty"`
	Helping   bool  `json:"helping,omitempty"`
	failed    bool
}

func (o *Operation) state() string {
	switch {
	case o.Phase == PhaseDone && o.failed:
		return ClaimFailed
	case o.Phase == PhaseDone:
		return ClaimCompleted
	case o.Blocked:
		return ClaimBlocked
	case o.Helping:
		return ClaimHelping
	}
	switch o.Phase {
	case PhaseQueued:
		return ClaimIdle
	case PhaseClaimed, PhasePlanning:
		return ClaimPlanning
	case PhaseExecuting:
		return ClaimExecuting
	}
	return ClaimReviewing
}

// Tracker follows this agent's operations through their phases, counts
// down their beat budgets and decides when to emit StatusClaims. It is a
// pure state machine: beats and lifecycle events come in, the claims to
// publish come out (without hlc and tempo_drift_ms, which the driver
// stamps). It is not safe for concurrent use.
//
// Claim cadence, so the gossip load stays small (one claim per operation
// per bar plus one per change):
//   - on every change of phase, of blocked or of helping, one claim for
//     that operation (a finished operation claims completed or failed,
//     once, and is dropped at the next beat);
//   - when an operation's budget runs out, one claim with overrun set;
//   - on the first beat of every bar (and the first beat the tracker sees),
//     one claim per active operation, or a single idle claim when there
//     is none, so the admin hears from every agent once a bar.
type Tracker struct {
	cfg  TrackerConfig
	beat int64 // latest beat; -1 before the first
	ops  map[string]*Operation
	// forgotten counts the operations dropped as abandoned.
	forgotten int64
}

// AbandonBudgets is how many of its budgets an operation may stay open
// on a BACKBEAT node before its tracker forgets it: its end was never heard (a completion lost
// on the mesh, a task that moved on without telling this node). Every
// step of a task is bounded by its timeouts, so an operation this old is
// not running any more.
const AbandonBudgets = 3

// NewTracker returns a tracker with no operations.
func NewTracker(cfg TrackerConfig) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("tracker config: %w", err)
	}
	return &Tracker{cfg: cfg, beat: -1, ops: map[string]*Operation{}}, nil
}

// Advance moves an operation to phase p, beginning it (with the default
// budget) when it is not tracked yet. Moving to the current phase changes
// nothing; moving backwards is refused, except to claimed. agentID, when
// set, names the agent doing the work. Finish, not Advance, ends an
// operation.
func (t *Tracker) Advance(key string, p Phase, agentID string) ([]gossip.StatusClaim, error) {
	if key == "" {
		return nil, fmt.Errorf("advance: %w: task key missing", chorus.ErrInvalid)
	}
	if p.rank() < 0 || p == PhaseDone {
		return nil, fmt.Errorf("advance %s: %w: phase %q is not one of queued, claimed, planning, executing, reviewing", key, chorus.ErrInvalid, p)
	}
	op, ok := t.ops[key]
	if !ok {
		op = &Operation{TaskKey: key, AgentID: t.cfg.AgentID, Phase: p, Budget: t.cfg.Budget, BeatsLeft: t.cfg.Budget, SinceBeat: t.now()}
		t.ops[key] = op
	} else {
		switch {
		case op.Phase == PhaseDone:
			return nil, fmt.Errorf("advance %s to %s: %w: the operation is done", key, p, chorus.ErrInvalid)
		case p == op.Phase:
			if agentID == "" || agentID == op.AgentID {
				return nil, nil
			}
		case p.rank() < op.Phase.rank() && p != PhaseClaimed:
			return nil, fmt.Errorf("advance %s: %w: %s is before %s", key, chorus.ErrInvalid, p, op.Phase)
		}
		if p != op.Phase {
			op.Phase, op.SinceBeat = p, t.now()
		}
	}
	if agentID != "" {
		op.AgentID = agentID
	}
	return []gossip.StatusClaim{t.claim(op, "")}, nil
}

// Finish ends an operation as completed or failed and returns its final
// claim. An operation that was never tracked (its claim happened on
// another node) gets its final claim all the same. Finishing twice
// changes nothing.
func (t *Tracker) Finish(key, agentID string, failed bool, notes string) []gossip.StatusClaim {
	op, ok := t.ops[key]
	if !ok {
		op = &Operation{TaskKey: key, AgentID: t.cfg.AgentID, Budget: t.cfg.Budget}
		t.ops[key] = op
	} else if op.Phase == PhaseDone {
		return nil
	}
	if agentID != "" {
		op.AgentID = agentID
	}
	op.Phase, op.SinceBeat, op.failed, op.Blocked, op.Helping = PhaseDone, t.now(), failed, false, false
	return []gossip.StatusClaim{t.claim(op, notes)}
}

// SetBlocked marks an active operation as waiting on something outside the
// agent (blocked) or not.
func (t *Tracker) SetBlocked(key string, blocked bool) []gossip.StatusClaim {
	op, ok := t.ops[key]
	if !ok || op.Phase == PhaseDone || op.Blocked == blocked {
		return nil
	}
	op.Blocked = blocked
	return []gossip.StatusClaim{t.claim(op, "")}
}

// SetHelping marks an active operation as this agent helping another's
// task, or not.
func (t *Tracker) SetHelping(key string, helping bool) []gossip.StatusClaim {
	op, ok := t.ops[key]
	if !ok || op.Phase == PhaseDone || op.Helping == helping {
		return nil
	}
	op.Helping = helping
	return []gossip.StatusClaim{t.claim(op, "")}
}

// Drop forgets an operation without a claim, and reports whether it was
// tracked: one this node followed for a while that another node now holds
// (a task placed on another agent), whose claims are that node's to make.
func (t *Tracker) Drop(key string) bool {
	if _, ok := t.ops[key]; !ok {
		return false
	}
	delete(t.ops, key)
	return true
}

// Beat moves the tracker to beat index: finished operations are dropped,
// the budgets of the others count down by the beats elapsed (an index
// that goes backwards, a new timeline, counts as one beat; a repeated index
// as none), and the claims of the beat are returned.
func (t *Tracker) Beat(index int64) []gossip.StatusClaim {
	if index == t.beat {
		return nil
	}
	first := t.beat < 0
	elapsed := int64(1)
	if !first && index > t.beat {
		elapsed = index - t.beat
	}
	newBar := first || index < t.beat || BarOf(index, t.cfg.BarLength) != BarOf(t.beat, t.cfg.BarLength)
	t.beat = index
	var out []gossip.StatusClaim
	for _, key := range slices.Sorted(maps.Keys(t.ops)) {
		op := t.ops[key]
		if op.Phase == PhaseDone {
			delete(t.ops, key)
			continue
		}
		if !first {
			op.BeatsUsed += int(elapsed)
			op.BeatsLeft = max(op.Budget-op.BeatsUsed, 0)
		}
		if t.cfg.Abandon > 0 && op.BeatsUsed >= t.cfg.Abandon*op.Budget {
			delete(t.ops, key)
			t.forgotten++
			continue
		}
		switch {
		case op.BeatsUsed > op.Budget && !op.Overrun:
			op.Overrun = true
			out = append(out, t.claim(op, fmt.Sprintf("over budget: %d beats used of %d", op.BeatsUsed, op.Budget)))
		case newBar:
			out = append(out, t.claim(op, ""))
		}
	}
	if newBar && len(t.ops) == 0 {
		out = append(out, gossip.StatusClaim{AgentID: t.cfg.AgentID, State: ClaimIdle, BeatIndex: index})
	}
	return out
}

// Operations returns the tracked operations sorted by task key, finished
// ones included until the next beat.
func (t *Tracker) Operations() []Operation {
	out := make([]Operation, 0, len(t.ops))
	for _, key := range slices.Sorted(maps.Keys(t.ops)) {
		op := *t.ops[key]
		op.State = op.state()
		out = append(out, op)
	}
	return out
}

// ByPhase counts the tracked operations per phase; every phase is present.
func (t *Tracker) ByPhase() map[Phase]int {
	out := make(map[Phase]int, 6)
	for _, p := range Phases() {
		out[p] = 0
	}
	for _, op := range t.ops {
		out[op.Phase]++
	}
	return out
}

// Forgotten counts the operations dropped because they stayed open for
// Abandon budgets.
func (t *Tracker) Forgotten() int64 { return t.forgotten }

// LastBeat is the latest beat index the tracker saw, -1 before the first.
func (t *Tracker) LastBeat() int64 { return t.beat }

func (t *Tracker) now() int64 { return max(t.beat, 0) }

// claim is op's StatusClaim at the current beat.
func (t *Tracker) claim(op *Operation, notes string) gossip.StatusClaim {
	return gossip.StatusClaim{
		AgentID:   op.AgentID,
		TaskKey:   op.TaskKey,
		State:     op.state(),
		Phase:     string(op.Phase),
		BeatIndex: t.now(),
		BeatsLeft: op.BeatsLeft,
		// Progress is the phase's place in the six: 0 queued, 0.2
		// claimed, ... 1 done. Beats say how long it took, not how far
		// the work is.
		Progress: float64(op.Phase.rank()) / 5,
		Overrun:  op.Overrun,
		Notes:    notes,
	}
}
