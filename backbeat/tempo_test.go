package backbeat

import (
	"math"
	"testing"
	"time"

	"chorus/gossip"
)

func TestStepTempo(t *testing.T) {
	cases := []struct {
		cur, target, want float64
	}{
		{30, 30, 30},
		{30, 32, 32},    // within 10 %: at once
		{30, 33, 33},    // exactly 10 %
		{30, 60, 33},    // beyond: one step of 10 %
		{30, 27, 27},    // exactly -10 %
		{30, 10, 27},    // beyond downwards
		{2, 120, 2.2},   // dev to production or back is many steps
		{100, 91, 91},   // within
		{100, 89, 90},   // just beyond
		{100, 111, 110}, // just beyond upwards
	}
	for _, c := range cases {
		if got := StepTempo(c.cur, c.target); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("StepTempo(%v, %v) = %v, want %v", c.cur, c.target, got, c.want)
		}
	}
	// From 2 to 4 BPM: every step within ±10 %, and it arrives.
	cur, steps := 2.0, 0
	for cur != 4 {
		next := StepTempo(cur, 4)
		if r := next / cur; r > 1.1+1e-12 || r < 1 {
			t.Fatalf("step %v -> %v is %.4f", cur, next, r)
		}
		cur, steps = next, steps+1
	}
	if steps != 8 { // 2·1.1^7 = 3.90 < 4 ≤ 2·1.1^8
		t.Errorf("2 -> 4 BPM took %d steps, want 8", steps)
	}
}

func TestPhaseOf(t *testing.T) {
	cases := []struct {
		beat int64
		bar  int
		want string
	}{
		{0, 120, gossip.PhasePlan}, {29, 120, gossip.PhasePlan},
		{30, 120, gossip.PhaseExecute}, {89, 120, gossip.PhaseExecute},
		{90, 120, gossip.PhaseReview}, {119, 120, gossip.PhaseReview},
		{120, 120, gossip.PhasePlan}, {239, 120, gossip.PhaseReview},
		{0, 4, gossip.PhasePlan}, {1, 4, gossip.PhaseExecute}, {2, 4, gossip.PhaseExecute}, {3, 4, gossip.PhaseReview},
		{0, 10, gossip.PhasePlan}, {2, 10, gossip.PhasePlan}, {3, 10, gossip.PhaseExecute}, {7, 10, gossip.PhaseExecute}, {8, 10, gossip.PhaseReview},
		{0, 1, gossip.PhasePlan}, {7, 1, gossip.PhasePlan},
		{1, 2, gossip.PhaseExecute}, // too short a bar for a review quarter
	}
	for _, c := range cases {
		if got := PhaseOf(c.beat, c.bar); got != c.want {
			t.Errorf("PhaseOf(%d, %d) = %s, want %s", c.beat, c.bar, got, c.want)
		}
	}
	// The 120-beat split is 30/60/30.
	count := map[string]int{}
	for b := int64(0); b < 120; b++ {
		count[PhaseOf(b, 120)]++
	}
	if count[gossip.PhasePlan] != 30 || count[gossip.PhaseExecute] != 60 || count[gossip.PhaseReview] != 30 {
		t.Errorf("split = %v, want plan 30, execute 60, review 30", count)
	}
}

func TestIntervalAndWindow(t *testing.T) {
	if got := Interval(2); got != 30*time.Second {
		t.Errorf("Interval(2) = %v", got)
	}
	if got := Interval(600); got != 100*time.Millisecond {
		t.Errorf("Interval(600) = %v", got)
	}
	if got := WindowID("chorus", 7); got != "chorus/bar/7" {
		t.Errorf("WindowID = %q", got)
	}
	if BarOf(119, 120) != 0 || BarOf(120, 120) != 1 {
		t.Error("BarOf")
	}
}
