package backbeat

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"chorus"
	"chorus/gossip"
)

const key1, key2 = "task/github/o/r/1", "task/github/o/r/2"

func newTestTracker(t *testing.T, bar, budget int) *Tracker {
	t.Helper()
	tr, err := NewTracker(TrackerConfig{AgentID: "me", BarLength: bar, Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// brief is the part of a claim the tests compare.
type brief struct {
	key, state, phase string
	beat              int64
	left              int
	overrun           bool
}

func briefs(cs []gossip.StatusClaim) []brief {
	var out []brief
	for _, c := range cs {
		if err := c.Validate(); err != nil {
			panic(err)
		}
		out = append(out, brief{c.TaskKey, c.State, c.Phase, c.BeatIndex, c.BeatsLeft, c.Overrun})
	}
	return out
}

func equalBriefs(a, b []brief) bool { return slices.Equal(a, b) }

func TestTrackerPhases(t *testing.T) {
	type step struct {
		phase   Phase
		wantErr bool
		claim   string // state of the claim, "" for none
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"all six in order", []step{
			{PhaseQueued, false, ClaimIdle}, {PhaseClaimed, false, ClaimPlanning}, {PhasePlanning, false, ClaimPlanning},
			{PhaseExecuting, false, ClaimExecuting}, {PhaseReviewing, false, ClaimReviewing},
		}},
		{"skipping forward", []step{{PhaseClaimed, false, ClaimPlanning}, {PhaseExecuting, false, ClaimExecuting}}},
		{"the same phase again says nothing", []step{{PhaseExecuting, false, ClaimExecuting}, {PhaseExecuting, false, ""}}},
		{"backwards is refused", []step{{PhaseExecuting, false, ClaimExecuting}, {PhasePlanning, true, ""}}},
		{"claimed again is a new placement", []step{
			{PhaseClaimed, false, ClaimPlanning}, {PhaseExecuting, false, ClaimExecuting}, {PhaseClaimed, false, ClaimPlanning},
		}},
		{"done only through Finish", []step{{PhaseDone, true, ""}}},
		{"unknown phase", []step{{Phase("dancing"), true, ""}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := newTestTracker(t, 4, 10)
			for i, s := range c.steps {
				claims, err := tr.Advance(key1, s.phase, "")
				if (err != nil) != s.wantErr {
					t.Fatalf("step %d (%s): err = %v", i, s.phase, err)
				}
				if err != nil && !errors.Is(err, chorus.ErrInvalid) {
					t.Errorf("step %d: %v is not ErrInvalid", i, err)
				}
				got := ""
				if len(claims) == 1 {
					got = claims[0].State
					if claims[0].Phase != string(s.phase) || claims[0].AgentID != "me" {
						t.Errorf("step %d: claim %+v", i, claims[0])
					}
				}
				if len(claims) > 1 || got != s.claim {
					t.Errorf("step %d (%s): claims %v, want state %q", i, s.phase, briefs(claims), s.claim)
				}
			}
		})
	}
	tr := newTestTracker(t, 4, 10)
	if _, err := tr.Advance("", PhaseClaimed, ""); !errors.Is(err, chorus.ErrInvalid) {
		t.Errorf("empty key: %v", err)
	}
	tr.Finish(key1, "", false, "")
	if _, err := tr.Advance(key1, PhaseExecuting, ""); err == nil {
		t.Error("advancing a finished operation was accepted")
	}
}

func TestTrackerBudgetsAndCadence(t *testing.T) {
	tr := newTestTracker(t, 4, 3)
	// Beat 0 is the first the tracker sees: an idle claim.
	if got, want := briefs(tr.Beat(0)), []brief{{"", ClaimIdle, "", 0, 0, false}}; !equalBriefs(got, want) {
		t.Fatalf("beat 0: %v, want %v", got, want)
	}
	if got := briefs(mustAdvance(t, tr, key1, PhaseClaimed, "b")); !equalBriefs(got, []brief{{key1, ClaimPlanning, "claimed", 0, 3, false}}) {
		t.Fatalf("claimed: %v", got)
	}
	steps := []struct {
		beat int64
		want []brief
	}{
		{0, nil}, // a repeated beat: nothing
		{1, nil}, // left 2
		{2, nil}, // left 1
		{3, nil}, // left 0, not over yet
		{4, []brief{{key1, ClaimPlanning, "claimed", 4, 0, true}}}, // over budget (and a downbeat: one claim, not two)
		{5, nil},
		{8, []brief{{key1, ClaimPlanning, "claimed", 8, 0, true}}}, // downbeat, three beats elapsed at once
	}
	for _, s := range steps {
		if got := briefs(tr.Beat(s.beat)); !equalBriefs(got, s.want) {
			t.Errorf("beat %d: %v, want %v", s.beat, got, s.want)
		}
	}
	ops := tr.Operations()
	if len(ops) != 1 || ops[0].BeatsUsed != 8 || ops[0].BeatsLeft != 0 || !ops[0].Overrun || ops[0].AgentID != "b" || ops[0].State != ClaimPlanning {
		t.Fatalf("operations: %+v", ops)
	}

	// A second operation with budget to spare, and downbeat claims for both.
	mustAdvance(t, tr, key2, PhaseExecuting, "")
	if got, want := briefs(tr.Beat(12)), []brief{
		{key1, ClaimPlanning, "claimed", 12, 0, true},
		{key2, ClaimExecuting, "executing", 12, 0, true},
	}; !equalBriefs(got, want) {
		// key2 began at beat 8 with budget 3: 4 beats used by 12.
		t.Errorf("beat 12: %v, want %v", got, want)
	}
	if by := tr.ByPhase(); by[PhaseClaimed] != 1 || by[PhaseExecuting] != 1 || by[PhaseDone] != 0 || len(by) != 6 {
		t.Errorf("ByPhase = %v", by)
	}

	// Finishing claims completed/failed at once and drops at the next beat.
	if got := briefs(tr.Finish(key1, "", false, "")); !equalBriefs(got, []brief{{key1, ClaimCompleted, "done", 12, 0, true}}) {
		t.Errorf("finish: %v", got)
	}
	if got := tr.Finish(key1, "", true, ""); got != nil {
		t.Errorf("finishing twice: %v", briefs(got))
	}
	if got := briefs(tr.Finish(key2, "", true, "exit 1")); !equalBriefs(got, []brief{{key2, ClaimFailed, "done", 12, 0, true}}) {
		t.Errorf("fail: %v", got)
	}
	if len(tr.Operations()) != 2 {
		t.Error("finished operations gone before the next beat")
	}
	tr.Beat(13)
	if len(tr.Operations()) != 0 {
		t.Errorf("finished operations kept: %+v", tr.Operations())
	}
	// No operations: one idle claim per bar.
	if got := briefs(tr.Beat(16)); !equalBriefs(got, []brief{{"", ClaimIdle, "", 16, 0, false}}) {
		t.Errorf("idle downbeat: %v", got)
	}
	// A beat index going back (a new admin's timeline) is a new bar.
	if got := briefs(tr.Beat(2)); !equalBriefs(got, []brief{{"", ClaimIdle, "", 2, 0, false}}) {
		t.Errorf("new timeline: %v", got)
	}
}

func TestTrackerBlockedHelpingAndForeignFinish(t *testing.T) {
	tr := newTestTracker(t, 4, 10)
	tr.Beat(0)
	mustAdvance(t, tr, key1, PhaseExecuting, "")
	if got := tr.SetBlocked(key1, true); len(got) != 1 || got[0].State != ClaimBlocked {
		t.Errorf("blocked: %v", briefs(got))
	}
	if got := tr.SetBlocked(key1, true); got != nil {
		t.Errorf("blocked twice: %v", briefs(got))
	}
	if got := tr.SetBlocked(key1, false); len(got) != 1 || got[0].State != ClaimExecuting {
		t.Errorf("unblocked: %v", briefs(got))
	}
	if got := tr.SetHelping(key1, true); len(got) != 1 || got[0].State != ClaimHelping {
		t.Errorf("helping: %v", briefs(got))
	}
	if got := tr.SetHelping(key2, true); got != nil {
		t.Errorf("helping on an unknown operation: %v", briefs(got))
	}
	// A completion seen without its claim (the claim ran on another node).
	got := tr.Finish(key2, "other", false, "")
	if len(got) != 1 || got[0].AgentID != "other" || got[0].State != ClaimCompleted || got[0].Progress != 1 {
		t.Errorf("foreign finish: %+v", got)
	}
}

func TestTrackerDrop(t *testing.T) {
	tr := newTestTracker(t, 4, 10)
	tr.Beat(0)
	mustAdvance(t, tr, key1, PhaseQueued, "")
	if !tr.Drop(key1) {
		t.Error("Drop of a tracked operation reported false")
	}
	if tr.Drop(key1) || tr.Drop(key2) {
		t.Error("Drop of an untracked operation reported true")
	}
	if ops := tr.Operations(); len(ops) != 0 {
		t.Errorf("operations after drop: %+v", ops)
	}
	// A dropped operation makes no claim at the next bar: the idle one comes.
	if got := briefs(tr.Beat(4)); len(got) != 1 || got[0].state != ClaimIdle || got[0].key != "" {
		t.Errorf("claims at the next bar: %+v", got)
	}
}

func TestTrackerForgetsAbandonedOperations(t *testing.T) {
	tr, err := NewTracker(TrackerConfig{AgentID: "me", BarLength: 100, Budget: 2, Abandon: 3})
	if err != nil {
		t.Fatal(err)
	}
	tr.Beat(0)
	mustAdvance(t, tr, key1, PhaseReviewing, "")
	tr.Beat(3)
	mustAdvance(t, tr, key2, PhaseExecuting, "")
	tr.Beat(5) // key1: 5 of 6 beats
	if n := len(tr.Operations()); n != 2 || tr.Forgotten() != 0 {
		t.Fatalf("at beat 5: %d operations, %d forgotten", n, tr.Forgotten())
	}
	tr.Beat(6) // key1: 6 beats, three budgets: forgotten, without a claim
	if ops := tr.Operations(); len(ops) != 1 || ops[0].TaskKey != key2 || tr.Forgotten() != 1 {
		t.Fatalf("at beat 6: %+v, %d forgotten", ops, tr.Forgotten())
	}
	if _, err := NewTracker(TrackerConfig{AgentID: "me", BarLength: 1, Budget: 1, Abandon: -1}); err == nil || !strings.Contains(err.Error(), "Abandon") {
		t.Errorf("negative Abandon: %v", err)
	}
}

func mustAdvance(t *testing.T, tr *Tracker, key string, p Phase, agent string) []gossip.StatusClaim {
	t.Helper()
	c, err := tr.Advance(key, p, agent)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAggregator(t *testing.T) {
	a, err := NewAggregator("c1", 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []gossip.StatusClaim{
		{AgentID: "a", State: ClaimIdle, BeatIndex: 12},
		{AgentID: "b", TaskKey: key1, State: ClaimPlanning, BeatIndex: 12, DriftMS: -7},
		{AgentID: "b", TaskKey: key1, State: ClaimExecuting, BeatIndex: 13, Overrun: true},
		{AgentID: "b", TaskKey: key1, State: ClaimPlanning, BeatIndex: 12}, // late copy of an older claim
		{AgentID: "c", TaskKey: key2, State: ClaimExecuting, BeatIndex: 14, DriftMS: 3},
		{AgentID: "a", State: ClaimIdle, BeatIndex: 15},
	} {
		a.Add(c)
	}
	r := a.Cut(4, 30)
	want := gossip.BarReport{ClusterID: "c1", WindowID: "c1/bar/3", Bar: 3, FromBeat: 12, ToBeat: 15, Agents: 3,
		States: []gossip.StateCount{{State: ClaimExecuting, Count: 2}, {State: ClaimIdle, Count: 1}}, Overruns: 1, MaxDriftMS: 7, TempoBPM: 30, Claims: 6}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("report\n %+v\nwant\n %+v", r, want)
	}
	if err := r.Validate(); err != nil {
		t.Error(err)
	}
	if a.Bar() != 4 {
		t.Errorf("open bar %d", a.Bar())
	}
	empty := a.Cut(5, 30)
	if empty.Bar != 4 || empty.Agents != 0 || empty.Claims != 0 || empty.States != nil || empty.FromBeat != 16 || empty.ToBeat != 19 {
		t.Errorf("empty bar: %+v", empty)
	}
	if _, err := NewAggregator("", 4, 0); !errors.Is(err, chorus.ErrInvalid) {
		t.Errorf("no cluster: %v", err)
	}
}

func TestClaimFieldsAreChecked(t *testing.T) {
	bad := []gossip.StatusClaim{
		{AgentID: "a", State: ClaimIdle, Phase: "sleeping"},
		{AgentID: "a", State: ClaimIdle, DriftMS: math.NaN()},
	}
	for _, c := range bad {
		if err := c.Validate(); !errors.Is(err, chorus.ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", c, err)
		}
	}
	for _, p := range Phases() {
		if err := (gossip.StatusClaim{AgentID: "a", State: ClaimIdle, Phase: string(p)}).Validate(); err != nil {
			t.Errorf("phase %s: %v", p, err)
		}
	}
	for _, s := range ClaimStates() {
		if err := (gossip.StatusClaim{AgentID: "a", State: s}).Validate(); err != nil {
			t.Errorf("state %s: %v", s, err)
		}
	}
}
