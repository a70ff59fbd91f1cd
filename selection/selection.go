package selection

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"
)

// Weights of the score's components (SPEC section 3).
const (
	WeightRole         = 0.4
	WeightExpertise    = 0.3
	WeightAvailability = 0.2
	WeightPerformance  = 0.1
	// Threshold is the score a candidate must exceed to qualify.
	Threshold = 0.5
	// DefaultPerformance is the record of an agent with no history yet:
	// neither trusted nor distrusted.
	DefaultPerformance = 0.5
)

// Requirement is what a task asks of its agent.
type Requirement struct {
	Role      string   `json:"role,omitempty"`
	Expertise []string `json:"expertise,omitempty"`
}

// Candidate is an agent as the selecting node knows it.
type Candidate struct {
	AgentID      string   `json:"agent_id"`
	PeerID       string   `json:"peer_id,omitempty"`
	Role         string   `json:"role"`
	Expertise    []string `json:"expertise,omitempty"`
	CurrentTasks int      `json:"current_tasks"`
	MaxTasks     int      `json:"max_tasks"`
	// Performance is the agent's success record, 0..1.
	Performance float64 `json:"performance"`
}

// Breakdown is a candidate's score and its parts, each 0..1 before
// weighting.
type Breakdown struct {
	AgentID      string  `json:"agent_id"`
	Role         float64 `json:"role"`
	Expertise    float64 `json:"expertise"`
	Availability float64 `json:"availability"`
	Performance  float64 `json:"performance"`
	Score        float64 `json:"score"`
	Qualified    bool    `json:"qualified"`
}

// Score rates one candidate for a requirement.
func Score(req Requirement, c Candidate) Breakdown {
	b := Breakdown{
		AgentID:      c.AgentID,
		Role:         RoleMatch(req.Role, c.Role),
		Expertise:    ExpertiseMatch(req.Expertise, c.Expertise),
		Availability: Availability(c.CurrentTasks, c.MaxTasks),
		Performance:  clamp01(c.Performance),
	}
	b.Score = WeightRole*b.Role + WeightExpertise*b.Expertise + WeightAvailability*b.Availability + WeightPerformance*b.Performance
	// Round away float noise so 0.4+0.1 compares as 0.5 on every node.
	b.Score = math.Round(b.Score*1e9) / 1e9
	b.Qualified = b.Score > Threshold
	return b
}

// RoleMatch is 1 for an exact match or no required role, 0.5 when one
// role is a word of the other (words split on '-', '_', '.' and spaces),
// else 0. Case does not matter.
func RoleMatch(required, have string) float64 {
	required, have = strings.ToLower(strings.TrimSpace(required)), strings.ToLower(strings.TrimSpace(have))
	switch {
	case required == "" || required == have:
		return 1
	case have == "":
		return 0
	case slices.Contains(words(have), required) || slices.Contains(words(required), have):
		return 0.5
	}
	return 0
}

func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' || r == '.' || r == ' ' })
}

// ExpertiseMatch is the fraction of the required expertise held (1 when
// none is required). Case does not matter; duplicates count once.
func ExpertiseMatch(required, have []string) float64 {
	need := map[string]bool{}
	for _, r := range required {
		if r = strings.ToLower(strings.TrimSpace(r)); r != "" {
			need[r] = true
		}
	}
	if len(need) == 0 {
		return 1
	}
	held := 0
	for r := range need {
		if slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(strings.TrimSpace(h), r) }) {
			held++
		}
	}
	return float64(held) / float64(len(need))
}

// Availability is (max − current)/max, clamped to 0..1; an agent that
// reports no capacity has none.
func Availability(current, max int) float64 {
	if max <= 0 {
		return 0
	}
	return clamp01(float64(max-current) / float64(max))
}

func clamp01(v float64) float64 {
	switch {
	case v != v || v < 0:
		return 0
	case v > 1:
		return 1
	}
	return v
}

// Best scores every candidate not in exclude and returns the best
// qualified one (ties by agent id) and all scores, best first. ok is false
// when nobody qualifies.
func Best(req Requirement, cands []Candidate, exclude []string) (best Candidate, scores []Breakdown, ok bool) {
	byID := map[string]Candidate{}
	for _, c := range cands {
		if c.AgentID == "" || slices.Contains(exclude, c.AgentID) {
			continue
		}
		if _, dup := byID[c.AgentID]; dup {
			continue // the first report of an agent wins; callers list self first
		}
		byID[c.AgentID] = c
		scores = append(scores, Score(req, c))
	}
	slices.SortFunc(scores, func(a, b Breakdown) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.AgentID, b.AgentID))
	})
	if len(scores) == 0 || !scores[0].Qualified {
		return Candidate{}, scores, false
	}
	return byID[scores[0].AgentID], scores, true
}

// Work is a task as Order sees it.
type Work struct {
	Key      string
	Priority int
	// Score is the best candidate's score for the task (0 if none).
	Score     float64
	CreatedAt time.Time
	// Blocks is how many other tasks depend on this one.
	Blocks int
}

// Order sorts work in place: priority (high first), then score (high
// first), then age (old first), then Blocks (more first), then key.
func Order(w []Work) {
	slices.SortStableFunc(w, func(a, b Work) int {
		return cmp.Or(
			cmp.Compare(b.Priority, a.Priority),
			cmp.Compare(b.Score, a.Score),
			a.CreatedAt.Compare(b.CreatedAt),
			cmp.Compare(b.Blocks, a.Blocks),
			cmp.Compare(a.Key, b.Key),
		)
	})
}

// PriorityKey maps a task priority (0..10, 10 most urgent) to a Temporal
// priority key (1..5, 1 dispatched first): 9–10 → 1, 7–8 → 2, 4–6 → 3 (the
// server's default level), 2–3 → 4, 0–1 → 5. A task that blocks others
// moves up one level.
func PriorityKey(priority int, blocking bool) int {
	var k int
	switch {
	case priority >= 9:
		k = 1
	case priority >= 7:
		k = 2
	case priority >= 4:
		k = 3
	case priority >= 2:
		k = 4
	default:
		k = 5
	}
	if blocking && k > 1 {
		k--
	}
	return k
}
