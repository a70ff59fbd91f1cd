package activities

import (
	"context"
	"fmt"
	"time"

	"chorus"
	"chorus/selection"
)

// PeerSource lists the agents this node knows, itself first: the gossip
// registry built from availability and capability broadcasts.
type PeerSource interface {
	Candidates() []selection.Candidate
}

// SelectInput asks for the best agent for a task.
type SelectInput struct {
	Key       string   `json:"key"`
	Role      string   `json:"role,omitempty"`
	Expertise []string `json:"expertise,omitempty"`
	// Exclude names agents not to choose: suspected dead after a
	// heartbeat timeout, or unresponsive to an earlier placement.
	Exclude []string `json:"exclude,omitempty"`
}

// SelectOutput is the choice, with every candidate's score for the
// record. Found is false when nobody qualifies.
type SelectOutput struct {
	Found   bool                  `json:"found"`
	AgentID string                `json:"agent_id,omitempty"`
	Score   float64               `json:"score,omitempty"`
	Scores  []selection.Breakdown `json:"scores,omitempty"`
}

// maxRecordedScores bounds the scores kept in history per selection.
const maxRecordedScores = 8

// Selector is the selection step (SPEC section 3, step 1).
type Selector struct {
	Peers PeerSource
	// Observe, when set, hears every outcome (for this node's BACKBEAT
	// operations: a task nobody qualifies for waits, blocked).
	Observe func(key string, out SelectOutput)
}

// Select scores the known agents with the SPEC's formula and returns the
// best one scoring above the threshold.
func (s *Selector) Select(ctx context.Context, in SelectInput) (SelectOutput, error) {
	if s.Peers == nil {
		return SelectOutput{}, fmt.Errorf("select agent for %s: this worker has no peer registry", in.Key)
	}
	best, scores, ok := selection.Best(selection.Requirement{Role: in.Role, Expertise: in.Expertise}, s.Peers.Candidates(), in.Exclude)
	if len(scores) > maxRecordedScores {
		scores = scores[:maxRecordedScores]
	}
	out := SelectOutput{Found: ok, Scores: scores}
	if ok {
		out.AgentID, out.Score = best.AgentID, scores[0].Score
	}
	if s.Observe != nil {
		s.Observe(in.Key, out)
	}
	return out, nil
}

// AcceptInput hands a claimed task to the chosen agent.
type AcceptInput struct {
	Key     string    `json:"key"`
	Number  int       `json:"number"`
	Title   string    `json:"title"`
	AgentID string    `json:"agent_id"`
	Fence   int64     `json:"fence"`
	Claimed time.Time `json:"claimed_at"`
}

// Announcer tells the network that this agent holds a task: the claimed
// progress with its estimated completion, and the seed of the task's HMMM
// room.
type Announcer interface {
	AnnounceClaim(ctx context.Context, in AcceptInput, estimate time.Time) error
}

// Accept runs on the chosen agent's control queue: it proves the agent is
// alive, returns its description and announces the claim. A failed
// announcement is logged by the announcer and does not fail the task.
func (a *Agent) Accept(ctx context.Context, in AcceptInput) (AgentInfo, error) {
	if in.AgentID != "" && in.AgentID != a.Info.ID {
		return AgentInfo{}, classify(fmt.Errorf("accept %s: %w: agent_id: this is agent %s, not %s", in.Key, chorus.ErrInvalid, a.Info.ID, in.AgentID))
	}
	if a.Announce != nil {
		timeout := a.Info.ExecutionTimeout
		if timeout <= 0 {
			timeout = 10 * time.Minute
		}
		_ = a.Announce.AnnounceClaim(ctx, in, in.Claimed.Add(timeout))
	}
	return a.Info, nil
}

// AgentControlQueue returns the queue of an agent's short control
// activities (accept, help requests, room posts). It is separate from the
// execution queue, whose slots (max_tasks) may all be busy.
func AgentControlQueue(agentID string) string { return "chorus-ctl-" + agentID }
