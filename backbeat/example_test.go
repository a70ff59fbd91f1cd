package backbeat_test

import (
	"cmp"
	"fmt"
	"time"

	"chorus/backbeat"
	"chorus/gossip"
)

// ExamplePulse runs an admin's pulse and a follower on a virtual clock:
// the follower locks on, measures a late frame's drift, and degrades when
// the frames stop.
func ExamplePulse() {
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	pulse, _ := backbeat.NewPulse(backbeat.PulseConfig{ClusterID: "chorus", TempoBPM: 60, BarLength: 4},
		backbeat.PulseStart{Beat: 0, At: start}, &backbeat.HLC{})
	follower, _ := backbeat.NewFollower(backbeat.FollowerConfig{TempoBPM: 60, BarLength: 4, MissedBeats: 3, LockGain: 0.25, RelockBeats: 0.25}, start)
	latency := []time.Duration{5, 5, 25, 5} // ms; the third frame is 20 ms late
	for i := range latency {
		due := pulse.NextAt()
		frame, _ := pulse.Beat(due)
		o := follower.Observe(frame, due.Add(latency[i]*time.Millisecond))
		fmt.Printf("beat %d %s downbeat=%v window=%s drift=%.0fms\n", frame.BeatIndex, frame.Phase, frame.Downbeat, frame.WindowID, o.DriftMS)
	}
	// No more frames: three beats missing, so local timing.
	st := follower.Status(start.Add(7 * time.Second))
	fmt.Println(st.State, "at beat", st.BeatIndex)
	// Output:
	// beat 0 plan downbeat=true window=chorus/bar/0 drift=0ms
	// beat 1 execute downbeat=false window=chorus/bar/0 drift=0ms
	// beat 2 execute downbeat=false window=chorus/bar/0 drift=20ms
	// beat 3 review downbeat=false window=chorus/bar/0 drift=-5ms
	// degraded at beat 6
}

// ExampleTracker follows one operation and shows the claims it emits.
func ExampleTracker() {
	tr, _ := backbeat.NewTracker(backbeat.TrackerConfig{AgentID: "agent-a", BarLength: 4, Budget: 2})
	show := func(cs []gossip.StatusClaim) {
		for _, c := range cs {
			fmt.Printf("beat %d %s %s left=%d overrun=%v\n", c.BeatIndex, cmp.Or(c.TaskKey, "-"), c.State, c.BeatsLeft, c.Overrun)
		}
	}
	show(tr.Beat(0))
	c, _ := tr.Advance("task/github/o/r/7", backbeat.PhaseExecuting, "")
	show(c)
	for b := int64(1); b <= 4; b++ {
		show(tr.Beat(b))
	}
	show(tr.Finish("task/github/o/r/7", "", false, ""))
	// Output:
	// beat 0 - idle left=0 overrun=false
	// beat 0 task/github/o/r/7 executing left=2 overrun=false
	// beat 3 task/github/o/r/7 executing left=0 overrun=true
	// beat 4 task/github/o/r/7 executing left=0 overrun=true
	// beat 4 task/github/o/r/7 completed left=0 overrun=true
}

// ExampleNode wires a node to a gossip topic. It is compiled but not run:
// it needs peers.
func ExampleNode() {
	var topic *gossip.Topic // node.Join(gossip.TopicBackbeat)
	cfg := backbeat.DefaultConfig()
	cfg.AgentID = "agent-a"
	cfg.IsAdmin = func() bool { return true } // the admin publishes the pulse
	n, err := backbeat.New(cfg, topic)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = n.Advance("task/github/o/r/7", backbeat.PhaseClaimed, "agent-a")
	fmt.Println(n.Snapshot().State)
}
