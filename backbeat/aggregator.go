package backbeat

import (
	"fmt"
	"maps"
	"math"
	"slices"

	"chorus"
	"chorus/gossip"
)

// Aggregator is the admin's collection of one bar's StatusClaims, cut into
// a BarReport when the bar ends. A claim belongs to the bar that is open
// when the admin takes it (claims describing the end of a bar, sent on
// the next downbeat, land in the next bar). Per operation (task key; an
// agent's idle claims count as one operation of that agent) only the
// latest claim of the bar counts towards the states; an operation counts
// as an overrun when any of its claims in the bar says so. It is a pure
// value, not safe for concurrent use.
type Aggregator struct {
	clusterID string
	barLength int
	bar       int64
	latest    map[string]gossip.StatusClaim
	agents    map[string]struct{}
	overruns  map[string]struct{}
	maxDrift  float64
	claims    int
}

// NewAggregator returns an aggregator with bar open.
func NewAggregator(clusterID string, barLength int, bar int64) (*Aggregator, error) {
	if clusterID == "" {
		return nil, fmt.Errorf("aggregator: %w: cluster id missing", chorus.ErrInvalid)
	}
	if barLength < 1 {
		return nil, fmt.Errorf("aggregator: %w: bar length %d must be at least 1", chorus.ErrInvalid, barLength)
	}
	a := &Aggregator{clusterID: clusterID, barLength: barLength}
	a.open(bar)
	return a, nil
}

func (a *Aggregator) open(bar int64) {
	a.bar = bar
	a.latest, a.agents, a.overruns = map[string]gossip.StatusClaim{}, map[string]struct{}{}, map[string]struct{}{}
	a.maxDrift, a.claims = 0, 0
}

// Bar is the open bar.
func (a *Aggregator) Bar() int64 { return a.bar }

// Add takes one claim into the open bar.
func (a *Aggregator) Add(c gossip.StatusClaim) {
	op := c.TaskKey
	if op == "" {
		op = "idle:" + c.AgentID
	}
	if prev, ok := a.latest[op]; !ok || c.BeatIndex >= prev.BeatIndex {
		a.latest[op] = c
	}
	a.agents[c.AgentID] = struct{}{}
	if c.Overrun {
		a.overruns[op] = struct{}{}
	}
	a.maxDrift = max(a.maxDrift, math.Abs(c.DriftMS))
	a.claims++
}

// Cut returns the report of the open bar, at tempo bpm, and opens next.
func (a *Aggregator) Cut(next int64, bpm float64) gossip.BarReport {
	counts := map[string]int{}
	for _, c := range a.latest {
		counts[c.State]++
	}
	var states []gossip.StateCount
	for _, s := range slices.Sorted(maps.Keys(counts)) {
		states = append(states, gossip.StateCount{State: s, Count: counts[s]})
	}
	from := a.bar * int64(a.barLength)
	r := gossip.BarReport{
		ClusterID:  a.clusterID,
		WindowID:   WindowID(a.clusterID, a.bar),
		Bar:        a.bar,
		FromBeat:   from,
		ToBeat:     from + int64(a.barLength) - 1,
		Agents:     len(a.agents),
		States:     states,
		Overruns:   len(a.overruns),
		MaxDriftMS: a.maxDrift,
		TempoBPM:   bpm,
		Claims:     a.claims,
	}
	a.open(next)
	return r
}
