package backbeat

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"chorus"
	"chorus/gossip"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newTestPulse(t *testing.T, bpm float64, bar int, start PulseStart) *Pulse {
	t.Helper()
	p, err := NewPulse(PulseConfig{ClusterID: "c1", TempoBPM: bpm, BarLength: bar}, start, &HLC{})
	if err != nil {
		t.Fatalf("NewPulse: %v", err)
	}
	return p
}

func TestPulseSchedule(t *testing.T) {
	p := newTestPulse(t, 2, 4, PulseStart{Beat: 0, At: t0})
	if _, ok := p.Beat(t0.Add(-time.Millisecond)); ok {
		t.Fatal("a beat before its time")
	}
	var prevHLC Timestamp
	for n := int64(0); n < 10; n++ {
		due := t0.Add(time.Duration(n) * 30 * time.Second)
		if !p.NextAt().Equal(due) {
			t.Fatalf("beat %d due %v, want %v", n, p.NextAt(), due)
		}
		// The driver wakes a little late; the schedule does not drift.
		fr, ok := p.Beat(due.Add(40 * time.Millisecond))
		if !ok {
			t.Fatalf("beat %d not given", n)
		}
		if err := fr.Validate(); err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		want := gossip.BeatFrame{ClusterID: "c1", BeatIndex: n, Downbeat: n%4 == 0, Phase: PhaseOf(n, 4),
			DeadlineAt: due.Add(30 * time.Second), TempoBPM: 2, WindowID: WindowID("c1", n/4), HLC: fr.HLC}
		if fr != want {
			t.Errorf("frame %d = %+v\nwant %+v", n, fr, want)
		}
		ts, err := ParseTimestamp(fr.HLC)
		if err != nil || ts.Compare(prevHLC) <= 0 {
			t.Errorf("frame %d hlc %q (%v) not after %v", n, fr.HLC, err, prevHLC)
		}
		prevHLC = ts
		if _, ok := p.Beat(due.Add(41 * time.Millisecond)); ok {
			t.Fatalf("beat %d given twice", n)
		}
	}
}

func TestPulseTempoChangesAreStepped(t *testing.T) {
	cases := []struct {
		name       string
		from, to   float64
		wantTempos []float64 // tempo of the frames after the request
	}{
		{"within 10 % at once", 30, 32, []float64{32, 32}},
		{"doubling is stepped", 30, 60, []float64{33, 36.3, 39.93, 43.923, 48.3153, 53.14683, 58.461513, 60, 60}},
		{"a third is stepped down", 30, 10, []float64{27, 24.3, 21.87, 19.683, 17.7147, 15.94323, 14.348907, 12.9140163, 11.62261467, 10.460353203, 10}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newTestPulse(t, c.from, 120, PulseStart{Beat: 5, At: t0})
			now := t0
			prev, _ := p.Beat(now)
			if err := p.SetTempo(c.to); err != nil {
				t.Fatal(err)
			}
			for i, want := range c.wantTempos {
				now = p.NextAt()
				fr, ok := p.Beat(now)
				if !ok {
					t.Fatal("no beat")
				}
				if math.Abs(fr.TempoBPM-want) > 1e-6 {
					t.Errorf("frame %d tempo %v, want %v", i, fr.TempoBPM, want)
				}
				if r := fr.TempoBPM / prev.TempoBPM; r > 1+MaxTempoStep+1e-12 || r < 1-MaxTempoStep-1e-12 {
					t.Errorf("frame %d: tempo %v after %v is a change of %.1f %%", i, fr.TempoBPM, prev.TempoBPM, (r-1)*100)
				}
				// The deadline is one interval of the frame's own tempo.
				if got := fr.DeadlineAt.Sub(now); got != Interval(fr.TempoBPM) {
					t.Errorf("frame %d: deadline %v after the beat, want %v", i, got, Interval(fr.TempoBPM))
				}
				prev = fr
			}
		})
	}
}

func TestPulseStartingFromAnotherTempoStepsToItsOwn(t *testing.T) {
	// A new admin configured for 45 BPM continues a cluster at 30.
	p := newTestPulse(t, 45, 120, PulseStart{Beat: 500, At: t0, TempoBPM: 30})
	var got []float64
	for range 6 {
		fr, _ := p.Beat(p.NextAt())
		got = append(got, math.Round(fr.TempoBPM*1000)/1000)
	}
	want := []float64{33, 36.3, 39.93, 43.923, 45, 45}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("tempos %v, want %v", got, want)
		}
	}
}

func TestPulseSkipsBeatsAfterAStall(t *testing.T) {
	p := newTestPulse(t, 60, 120, PulseStart{Beat: 0, At: t0})
	p.Beat(t0)
	// Stalled for 3.5 beats: beats 1, 2 and 3 are due; only 3 is sent.
	fr, ok := p.Beat(t0.Add(3500 * time.Millisecond))
	if !ok || fr.BeatIndex != 3 || p.Skipped() != 2 {
		t.Fatalf("after a stall: beat %d (%v), skipped %d; want beat 3, skipped 2", fr.BeatIndex, ok, p.Skipped())
	}
	if want := t0.Add(4 * time.Second); !fr.DeadlineAt.Equal(want) || !p.NextAt().Equal(want) {
		t.Errorf("deadline %v, next %v; want both %v (the schedule keeps its phase)", fr.DeadlineAt, p.NextAt(), want)
	}
}

func TestPulseRefusesBadInput(t *testing.T) {
	good := PulseConfig{ClusterID: "c", TempoBPM: 2, BarLength: 120}
	cases := []struct {
		cfg   PulseConfig
		start PulseStart
		want  string
	}{
		{PulseConfig{TempoBPM: 2, BarLength: 120}, PulseStart{At: t0}, "ClusterID"},
		{PulseConfig{ClusterID: "c", TempoBPM: 0, BarLength: 120}, PulseStart{At: t0}, "TempoBPM"},
		{PulseConfig{ClusterID: "c", TempoBPM: math.NaN(), BarLength: 120}, PulseStart{At: t0}, "TempoBPM"},
		{PulseConfig{ClusterID: "c", TempoBPM: 7000, BarLength: 120}, PulseStart{At: t0}, "TempoBPM"},
		{PulseConfig{ClusterID: "c", TempoBPM: 2, BarLength: 0}, PulseStart{At: t0}, "BarLength"},
		{good, PulseStart{Beat: -1, At: t0}, "Beat"},
		{good, PulseStart{}, "At"},
		{good, PulseStart{At: t0, TempoBPM: -3}, "TempoBPM"},
	}
	for _, c := range cases {
		_, err := NewPulse(c.cfg, c.start, &HLC{})
		if !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewPulse(%+v, %+v) = %v, want ErrInvalid naming %s", c.cfg, c.start, err, c.want)
		}
	}
	p := newTestPulse(t, 2, 120, PulseStart{At: t0})
	if err := p.SetTempo(0); !errors.Is(err, chorus.ErrInvalid) || p.Target() != 2 {
		t.Errorf("SetTempo(0) = %v, target %v", err, p.Target())
	}
}
