package backbeat

import (
	"errors"
	"fmt"
	"time"

	"chorus"
	"chorus/gossip"
)

// PulseConfig configures the admin's beat schedule.
type PulseConfig struct {
	// ClusterID goes into every frame and window id.
	ClusterID string
	// TempoBPM is the tempo the pulse runs at (and steps towards when it
	// starts from another tempo).
	TempoBPM float64
	// BarLength is the number of beats in a bar.
	BarLength int
}

// DefaultPulseConfig returns the production schedule of cluster "chorus".
func DefaultPulseConfig() PulseConfig {
	return PulseConfig{
		// The worker's default --cluster-id.
		ClusterID: "chorus",
		// SPEC section 12: 2 BPM in production.
		TempoBPM: DefaultTempoBPM,
		// SPEC section 12: 120 beats a bar.
		BarLength: DefaultBarLength,
	}
}

// Validate names the first unusable field.
func (c PulseConfig) Validate() error {
	if c.ClusterID == "" {
		return fmt.Errorf("%w: ClusterID: missing", chorus.ErrInvalid)
	}
	if err := checkTempo(c.TempoBPM, "TempoBPM"); err != nil {
		return err
	}
	if c.BarLength < 1 {
		return fmt.Errorf("%w: BarLength: %d must be at least 1", chorus.ErrInvalid, c.BarLength)
	}
	return nil
}

// PulseStart is where a pulse begins: the index and time of its first beat
// and the tempo in effect. A new admin starts where its follower expects
// the next beat, so the cluster's beat index continues across a change of
// admin.
type PulseStart struct {
	Beat int64
	At   time.Time
	// TempoBPM is the starting tempo; zero means the configured one. A
	// different starting tempo is stepped towards the configured one.
	TempoBPM float64
}

// Pulse is the admin's beat schedule: a pure state machine with no clock
// or goroutine of its own. The driver asks NextAt when the next beat is
// due and calls Beat at (or after) that time. Beat n is due at the time
// beat n-1 was due plus the interval of beat n-1's tempo, so the schedule
// does not accumulate the driver's timer lateness. A Pulse is not safe for
// concurrent use.
type Pulse struct {
	cfg    PulseConfig
	hlc    *HLC
	target float64
	tempo  float64 // the tempo of the latest beat (before the first: the start's)
	next   int64
	nextAt time.Time
	// skipped counts beats the driver woke too late to publish.
	skipped int64
}

// NewPulse returns a pulse whose first beat is start. Frames are stamped
// from hlc, which the caller shares with everything else the node stamps.
func NewPulse(cfg PulseConfig, start PulseStart, hlc *HLC) (*Pulse, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pulse config: %w", err)
	}
	if start.Beat < 0 {
		return nil, fmt.Errorf("pulse start: %w: Beat: %d is negative", chorus.ErrInvalid, start.Beat)
	}
	if start.At.IsZero() {
		return nil, fmt.Errorf("pulse start: %w: At: missing", chorus.ErrInvalid)
	}
	if hlc == nil {
		return nil, errors.New("pulse: nil HLC")
	}
	tempo := start.TempoBPM
	if tempo == 0 {
		tempo = cfg.TempoBPM
	}
	if err := checkTempo(tempo, "PulseStart.TempoBPM"); err != nil {
		return nil, fmt.Errorf("pulse start: %w", err)
	}
	return &Pulse{cfg: cfg, hlc: hlc, target: cfg.TempoBPM, tempo: tempo, next: start.Beat, nextAt: start.At}, nil
}

// NextAt is when the next beat is due.
func (p *Pulse) NextAt() time.Time { return p.nextAt }

// NextBeat is the index of the next beat.
func (p *Pulse) NextBeat() int64 { return p.next }

// Tempo is the tempo of the latest beat (before the first, the starting
// tempo); Target is the tempo the pulse steps towards.
func (p *Pulse) Tempo() float64  { return p.tempo }
func (p *Pulse) Target() float64 { return p.target }

// Skipped counts the beats that were never published because the driver
// woke more than a beat late.
func (p *Pulse) Skipped() int64 { return p.skipped }

// SetTempo requests a new tempo. The change is not made at once: each beat
// moves the tempo by at most MaxTempoStep (±10 %) of the tempo of the beat
// before (see StepTempo), so a large request is spread over several beats
// and followers never see a jump larger than 10 %.
func (p *Pulse) SetTempo(bpm float64) error {
	if err := checkTempo(bpm, "tempo_bpm"); err != nil {
		return fmt.Errorf("set tempo: %w", err)
	}
	p.target = bpm
	return nil
}

// Beat returns the frame of the beat due at now, or false when none is
// due yet. When now is more than a beat past the due time (the process was
// stalled), the beats in between are skipped (counted in Skipped) and the
// frame is that of the latest due beat: beat_index keeps counting elapsed
// beats, and followers count the skipped ones as missed.
//
// The frame's tempo_bpm is the tempo of its interval and deadline_at is
// when the next beat is due. Each beat's tempo is one StepTempo from the
// previous one towards the target.
func (p *Pulse) Beat(now time.Time) (gossip.BeatFrame, bool) {
	if now.Before(p.nextAt) {
		return gossip.BeatFrame{}, false
	}
	for {
		tempo := StepTempo(p.tempo, p.target)
		due := p.nextAt.Add(Interval(tempo))
		if now.Before(due) {
			// p.next is the latest due beat.
			n := p.next
			p.tempo, p.next, p.nextAt = tempo, n+1, due
			bar := BarOf(n, p.cfg.BarLength)
			return gossip.BeatFrame{
				ClusterID:  p.cfg.ClusterID,
				BeatIndex:  n,
				Downbeat:   n%int64(p.cfg.BarLength) == 0,
				Phase:      PhaseOf(n, p.cfg.BarLength),
				HLC:        p.hlc.Now(now).String(),
				DeadlineAt: due.UTC(),
				TempoBPM:   tempo,
				WindowID:   WindowID(p.cfg.ClusterID, bar),
			}, true
		}
		// Beat p.next was due and so is the one after it: skip it.
		p.tempo, p.next, p.nextAt = tempo, p.next+1, due
		p.skipped++
	}
}
