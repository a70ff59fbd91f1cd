package backbeat

import (
	"fmt"
	"math"
	"time"

	"chorus"
	"chorus/gossip"
)

// State is where a follower's beat clock gets its timing from.
type State string

const (
	// StateWaiting: no frame heard yet, for fewer than MissedBeats beats
	// since the start; the follower counts beats on its own clock.
	StateWaiting State = "waiting"
	// StateLocked: frames arrive; the beat clock is phase-locked to them.
	StateLocked State = "locked"
	// StateDegraded: no frame for MissedBeats beats or more; the follower
	// keeps counting beats on its own clock at the last tempo heard.
	StateDegraded State = "degraded"
)

// FollowerConfig configures a follower's beat clock.
type FollowerConfig struct {
	// TempoBPM is the tempo of the local clock before the first frame.
	TempoBPM float64
	// BarLength is the number of beats in a bar.
	BarLength int
	// MissedBeats is how many expected frames in a row may be missing
	// before the follower degrades to local timing.
	MissedBeats int
	// LockGain is the share of each frame's timing error the beat clock
	// corrects (0 < LockGain <= 1): 1 follows every frame exactly, jitter
	// included; smaller values average the jitter out.
	LockGain float64
	// RelockBeats is the timing error, in beats, beyond which a frame is
	// taken as a new timeline (a new admin, a stalled one) and the clock
	// jumps to it instead of being corrected gradually.
	RelockBeats float64
}

// DefaultFollowerConfig returns the production follower.
func DefaultFollowerConfig() FollowerConfig {
	return FollowerConfig{
		// SPEC section 12: 2 BPM in production.
		TempoBPM: DefaultTempoBPM,
		// SPEC section 12: 120 beats a bar.
		BarLength: DefaultBarLength,
		// One or two lost frames are normal gossip loss (and a frame
		// published before the mesh forms is lost); three in a row means
		// the pulse is gone.
		MissedBeats: 3,
		// A quarter: delivery jitter is averaged over about seven frames,
		// while a clock running 0.1 % fast lags the lock by only 0.4 % of a
		// beat.
		LockGain: 0.25,
		// A quarter of a beat is far beyond gossip jitter (milliseconds)
		// at any tempo below 600 BPM, and well short of ambiguity about
		// which beat a frame belongs to.
		RelockBeats: 0.25,
	}
}

// Validate names the first unusable field.
func (c FollowerConfig) Validate() error {
	if err := checkTempo(c.TempoBPM, "TempoBPM"); err != nil {
		return err
	}
	switch {
	case c.BarLength < 1:
		return fmt.Errorf("%w: BarLength: %d must be at least 1", chorus.ErrInvalid, c.BarLength)
	case c.MissedBeats < 1:
		return fmt.Errorf("%w: MissedBeats: %d must be at least 1", chorus.ErrInvalid, c.MissedBeats)
	case !(c.LockGain > 0 && c.LockGain <= 1):
		return fmt.Errorf("%w: LockGain: %v must be within (0, 1]", chorus.ErrInvalid, c.LockGain)
	case !(c.RelockBeats > 0 && c.RelockBeats < 1):
		return fmt.Errorf("%w: RelockBeats: %v must be within (0, 1)", chorus.ErrInvalid, c.RelockBeats)
	}
	return nil
}

// Observation is what one received frame told the follower.
type Observation struct {
	// DriftMS is tempo_drift_ms: how far the frame arrived after (positive)
	// or before (negative) the time the local beat clock expected it.
	// Zero for the first frame of a timeline.
	DriftMS float64
	// Missed counts the frames between the previous one and this one that
	// never arrived.
	Missed int64
	// Relocked is set when the frame started a new timeline: the first
	// frame, a beat index that went backwards, or an error beyond
	// RelockBeats (DriftMS then shows the error).
	Relocked bool
	// Recovered is set when the follower was degraded before this frame.
	Recovered bool
	// Duplicate is set for a second frame of the latest beat; it changes
	// nothing.
	Duplicate bool
}

// FollowerStatus is the follower's beat clock at one moment.
type FollowerStatus struct {
	State State `json:"state"`
	// BeatIndex is the current beat by the local beat clock.
	BeatIndex int64 `json:"beat_index"`
	// NextBeatAt is when the local clock starts the next beat.
	NextBeatAt time.Time `json:"next_beat_at"`
	TempoBPM   float64   `json:"tempo_bpm"`
	// DriftMS is the tempo_drift_ms of the latest frame.
	DriftMS float64 `json:"tempo_drift_ms"`
	// SilentBeats counts the expected frames overdue (by half a beat)
	// since the latest one, or since the start before any frame.
	SilentBeats int64 `json:"silent_beats"`
	// Received, Missed and Relocks count frames taken, frames that never
	// arrived, and new timelines.
	Received int64 `json:"frames_received"`
	Missed   int64 `json:"frames_missed"`
	Relocks  int64 `json:"relocks"`
}

// Follower is a worker's beat clock: a pure state machine fed with
// received frames and their local arrival times, and asked for its status
// at a given time. It has no clock or goroutine of its own and is not
// safe for concurrent use.
//
// The model: the anchor is the latest frame's beat index and its local
// arrival time, smoothed by LockGain. A frame's own schedule time on the
// admin's clock is deadline_at minus one interval of its tempo, so the
// admin time elapsed between two frames is known exactly even across lost
// frames and tempo changes. The local clock expects frame n at
//
//	anchor_at + (schedule(n) - schedule(anchor))
//
// and tempo_drift_ms is the arrival time minus that expectation. Between
// frames, and while degraded, the current beat is counted from the anchor
// at the latest tempo heard.
type Follower struct {
	cfg         FollowerConfig
	heard       bool
	anchorBeat  int64
	anchorAt    time.Time // local time of anchorBeat
	anchorSched time.Time // admin schedule time of anchorBeat (zero before a frame)
	tempo       float64
	drift       float64
	received    int64
	missed      int64
	relocks     int64
}

// NewFollower returns a follower that starts counting beats, from beat 0,
// at start on its own clock.
func NewFollower(cfg FollowerConfig, start time.Time) (*Follower, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("follower config: %w", err)
	}
	return &Follower{cfg: cfg, anchorAt: start, tempo: cfg.TempoBPM}, nil
}

// Heard reports whether any frame was ever observed.
func (f *Follower) Heard() bool { return f.heard }

// Observe takes a frame that arrived at local time at.
func (f *Follower) Observe(fr gossip.BeatFrame, at time.Time) Observation {
	var o Observation
	before := f.Status(at).State
	sched := fr.DeadlineAt.Add(-Interval(fr.TempoBPM))
	switch {
	case !f.heard || fr.BeatIndex < f.anchorBeat:
		o.Relocked = true
	case fr.BeatIndex == f.anchorBeat:
		return Observation{Duplicate: true}
	default:
		expected := f.anchorAt.Add(sched.Sub(f.anchorSched))
		err := at.Sub(expected)
		o.DriftMS = float64(err) / float64(time.Millisecond)
		if math.Abs(float64(err)) > f.cfg.RelockBeats*float64(Interval(f.tempo)) || !sched.After(f.anchorSched) {
			o.Relocked = true
			break
		}
		o.Missed = fr.BeatIndex - f.anchorBeat - 1
		at = expected.Add(time.Duration(f.cfg.LockGain * float64(err)))
	}
	if o.Relocked {
		f.relocks++
	}
	f.heard = true
	f.anchorBeat, f.anchorAt, f.anchorSched = fr.BeatIndex, at, sched
	f.tempo = fr.TempoBPM
	f.drift = o.DriftMS
	f.received++
	f.missed += o.Missed
	o.Recovered = before == StateDegraded
	return o
}

// Status returns the beat clock at local time now.
func (f *Follower) Status(now time.Time) FollowerStatus {
	iv := Interval(f.tempo)
	elapsed := max(now.Sub(f.anchorAt), 0)
	beats := int64(elapsed / iv)
	silent := max(int64(math.Floor(float64(elapsed)/float64(iv)+0.5))-1, 0)
	st := FollowerStatus{
		BeatIndex:   f.anchorBeat + beats,
		NextBeatAt:  f.anchorAt.Add(time.Duration(beats+1) * iv),
		TempoBPM:    f.tempo,
		DriftMS:     f.drift,
		SilentBeats: silent,
		Received:    f.received,
		Missed:      f.missed,
		Relocks:     f.relocks,
		State:       StateLocked,
	}
	switch {
	case silent >= int64(f.cfg.MissedBeats):
		st.State = StateDegraded
	case !f.heard:
		st.State = StateWaiting
	}
	return st
}

// DegradesAt is when the follower degrades if no frame arrives before.
func (f *Follower) DegradesAt() time.Time {
	iv := Interval(f.tempo)
	return f.anchorAt.Add(time.Duration((float64(f.cfg.MissedBeats) + 0.5) * float64(iv)))
}
