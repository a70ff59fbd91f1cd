package backbeat

import (
	"fmt"
	"math"
	"time"

	"chorus"
	"chorus/gossip"
)

// Tempo bounds and steps (SPEC section 12).
const (
	// DefaultTempoBPM is the production tempo: a beat every 30 s, so a
	// 120-beat bar is an hour.
	DefaultTempoBPM = 2
	// DevTempoBPM is the tempo of a --dev worker: a beat every 2 s, a bar
	// every 4 minutes, quick enough to watch.
	DevTempoBPM = 30
	// DefaultBarLength is the number of beats in a bar.
	DefaultBarLength = 120
	// MaxTempoStep is the largest change of tempo at once, as a fraction
	// of the current tempo: ±10 %.
	MaxTempoStep = 0.10
	// MinTempoBPM and MaxTempoBPM bound any tempo: a beat at least every
	// 10 minutes (slower and a lost pulse takes most of an hour to notice)
	// and at most every 10 ms (faster and gossip latency is a whole beat).
	MinTempoBPM = 0.1
	MaxTempoBPM = 6000
)

// Interval is the length of one beat at bpm.
func Interval(bpm float64) time.Duration {
	return time.Duration(math.Round(float64(time.Minute) / bpm))
}

// checkTempo refuses a tempo outside MinTempoBPM..MaxTempoBPM.
func checkTempo(bpm float64, field string) error {
	if !(bpm >= MinTempoBPM && bpm <= MaxTempoBPM) {
		return fmt.Errorf("%w: %s: %v BPM is outside %v..%v", chorus.ErrInvalid, field, bpm, MinTempoBPM, MaxTempoBPM)
	}
	return nil
}

// StepTempo returns the tempo that follows cur on the way to target: target
// itself when it is within ±MaxTempoStep of cur, otherwise cur moved by
// exactly MaxTempoStep towards it. A change beyond the limit therefore
// takes several beats: 2 → 4 BPM is 2, 2.2, 2.42, ..., 3.54, 3.90, 4.
func StepTempo(cur, target float64) float64 {
	if hi := cur * (1 + MaxTempoStep); target > hi {
		return hi
	}
	if lo := cur * (1 - MaxTempoStep); target < lo {
		return lo
	}
	return target
}

// PhaseOf returns the beat phase of a position in a bar of barLength
// beats: plan for the first quarter, execute for the middle half, review
// for the last quarter. With 120 beats: plan 0-29, execute 30-89, review
// 90-119. The downbeat (position 0) is always plan.
func PhaseOf(beat int64, barLength int) string {
	pos := beat % int64(barLength)
	switch {
	case pos*4 < int64(barLength):
		return gossip.PhasePlan
	case pos*4 < 3*int64(barLength):
		return gossip.PhaseExecute
	}
	return gossip.PhaseReview
}

// BarOf returns the bar a beat belongs to (bar 0 is beats 0..barLength-1).
func BarOf(beat int64, barLength int) int64 {
	return beat / int64(barLength)
}

// WindowID names a bar of a cluster: "<cluster_id>/bar/<bar>". Every frame
// of a bar and its BarReport carry it.
func WindowID(clusterID string, bar int64) string {
	return fmt.Sprintf("%s/bar/%d", clusterID, bar)
}
