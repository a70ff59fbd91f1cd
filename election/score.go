package election

import (
	"math"

	"chorus/gossip"
)

// Weights of the five score components (SPEC section 6); they sum to 1.
const (
	WeightUptime       = 0.30
	WeightCapabilities = 0.20
	WeightResources    = 0.20
	WeightNetwork      = 0.15
	WeightExperience   = 0.15
)

// Score is a candidate's score, 0..1: the weighted sum of its components,
// each clamped to 0..1 first (NaN counts as 0).
func Score(c gossip.ScoreComponents) float64 {
	c = clampComponents(c)
	s := WeightUptime*c.Uptime + WeightCapabilities*c.Capabilities + WeightResources*c.Resources +
		WeightNetwork*c.Network + WeightExperience*c.Experience
	return clamp(s)
}

func clampComponents(c gossip.ScoreComponents) gossip.ScoreComponents {
	return gossip.ScoreComponents{Uptime: clamp(c.Uptime), Capabilities: clamp(c.Capabilities), Resources: clamp(c.Resources),
		Network: clamp(c.Network), Experience: clamp(c.Experience)}
}

func clamp(v float64) float64 {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	return math.Min(v, 1)
}

// better reports whether candidate a (score sa) beats b (score sb): the
// higher score wins, a tie goes to the smaller peer id.
func better(a string, sa float64, b string, sb float64) bool {
	if sa != sb {
		return sa > sb
	}
	return a < b
}
