package backbeat_test

import (
	"context"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"chorus/backbeat"
	"chorus/gossip"
)

// joined starts n gossip nodes on loopback, connected to each other, with
// the backbeat topic joined and its mesh formed.
func joined(t *testing.T, ctx context.Context, n int) []*gossip.Topic {
	t.Helper()
	nodes := make([]*gossip.Node, n)
	topics := make([]*gossip.Topic, n)
	for i := range nodes {
		cfg := gossip.DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.MDNS = false
		cfg.DHTMode = gossip.DHTOff
		node, err := gossip.New(ctx, cfg)
		if err != nil {
			t.Fatalf("gossip.New: %v", err)
		}
		t.Cleanup(func() {
			if err := node.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		for _, prev := range nodes[:i] {
			if err := node.Connect(ctx, prev.Addrs()[0]); err != nil {
				t.Fatalf("Connect: %v", err)
			}
		}
		nodes[i] = node
		if topics[i], err = node.Join(gossip.TopicBackbeat); err != nil {
			t.Fatal(err)
		}
	}
	for _, node := range nodes {
		if err := node.WaitMesh(ctx, gossip.TopicBackbeat, n-1); err != nil {
			t.Fatal(err)
		}
	}
	return topics
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		<-tick.C
	}
}

// metric reads one sample from a registry.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

func TestNodeOverGossip(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	topics := joined(t, ctx, 2)

	const key = "task/github/o/r/9"
	var isAdmin atomic.Bool
	isAdmin.Store(true)
	newNode := func(agent string, topic *gossip.Topic, admin func() bool) (*backbeat.Node, *prometheus.Registry) {
		reg := prometheus.NewPedanticRegistry()
		cfg := backbeat.DefaultConfig()
		cfg.ClusterID, cfg.AgentID = "test", agent
		cfg.TempoBPM, cfg.BarLength = 600, 10 // a beat every 100 ms, a bar a second
		cfg.Budget = 1000
		cfg.IsAdmin, cfg.AdminPoll = admin, 50*time.Millisecond
		cfg.Metrics = reg
		n, err := backbeat.New(cfg, topic)
		if err != nil {
			t.Fatal(err)
		}
		return n, reg
	}
	admin, adminReg := newNode("admin", topics[0], isAdmin.Load)
	follower, followerReg := newNode("follower", topics[1], nil)

	run := func(n *backbeat.Node) (stop func()) {
		rctx, rcancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- n.Run(rctx) }()
		return func() {
			rcancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	stopAdmin := run(admin)
	stopFollower := run(follower)
	defer stopFollower()

	if err := follower.Advance(key, backbeat.PhaseClaimed, ""); err != nil {
		t.Fatal(err)
	}
	if err := follower.Advance(key, backbeat.PhaseExecuting, ""); err != nil {
		t.Fatal(err)
	}

	// The follower locks on, and the frames arrive close to where its
	// clock expects them (a quarter of the 100 ms beat is its relock
	// threshold; gossip on loopback takes a millisecond or two).
	eventually(t, 10*time.Second, "follower locked with 10 frames and small drift", func() bool {
		s := follower.Snapshot()
		return s.Locked && s.FramesReceived >= 10 && math.Abs(s.DriftMS) < 10
	})
	if err := follower.Check(ctx); err != nil {
		t.Errorf("health while locked: %v", err)
	}
	s := follower.Snapshot()
	if s.TempoBPM != 600 || s.Admin || len(s.Operations) != 1 || s.Operations[0].Phase != backbeat.PhaseExecuting {
		t.Errorf("follower snapshot: %+v", s)
	}
	if a := admin.Snapshot(); !a.Admin || !a.Locked {
		t.Errorf("admin snapshot: %+v", a)
	}

	// The admin aggregates the follower's claims into bar reports, and
	// the follower hears them.
	eventually(t, 10*time.Second, "a bar report with both agents and the executing operation", func() bool {
		r := admin.Snapshot().LastBarReport
		if r == nil || r.Agents != 2 {
			return false
		}
		for _, sc := range r.States {
			if sc.State == backbeat.ClaimExecuting && sc.Count == 1 {
				return true
			}
		}
		return false
	})
	eventually(t, 10*time.Second, "the follower hears a bar report", func() bool {
		return follower.Snapshot().LastBarReport != nil
	})

	// The admin stops: the follower degrades to local timing, says so in
	// its health, and keeps counting beats.
	stopAdmin()
	last := follower.Snapshot()
	eventually(t, 5*time.Second, "follower degraded", func() bool { return follower.Snapshot().Degraded })
	err := follower.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "no pulse for") || !strings.Contains(err.Error(), "beats; using local timing") {
		t.Errorf("health while degraded: %v", err)
	}
	if got := metric(t, followerReg, "chorus_backbeat_degraded"); got != 1 {
		t.Errorf("degraded gauge %v", got)
	}
	eventually(t, 5*time.Second, "local timing counts beats", func() bool {
		return follower.Snapshot().BeatIndex >= last.BeatIndex+5
	})

	// The admin comes back (continuing its timeline): the follower
	// recovers without a new timeline.
	relocks := follower.Snapshot().Relocks
	stopAdmin = run(admin)
	defer stopAdmin()
	eventually(t, 10*time.Second, "follower locked again", func() bool { return follower.Snapshot().Locked })
	if r := follower.Snapshot(); r.Relocks != relocks || r.BeatIndex < last.BeatIndex || r.FramesMissed == 0 {
		t.Errorf("after recovery: %+v (relocks before %d, beat before %d)", r, relocks, last.BeatIndex)
	}

	// Losing leadership stops the pulse without stopping the node.
	isAdmin.Store(false)
	eventually(t, 5*time.Second, "admin no longer publishes", func() bool { return !admin.Snapshot().Admin })

	// Metrics.
	if got := metric(t, adminReg, "chorus_backbeat_frames_published_total"); got < 10 {
		t.Errorf("frames published %v", got)
	}
	if got := metric(t, adminReg, "chorus_backbeat_bar_reports_published_total"); got < 1 {
		t.Errorf("bar reports published %v", got)
	}
	if got := metric(t, adminReg, "chorus_backbeat_status_claims_received_total"); got < 1 {
		t.Errorf("claims received %v", got)
	}
	if got := metric(t, followerReg, "chorus_backbeat_frames_received_total"); got < 10 {
		t.Errorf("frames received %v", got)
	}
	if got := metric(t, followerReg, "chorus_backbeat_frames_missed_total"); got < 3 {
		t.Errorf("frames missed %v", got)
	}
	if got := metric(t, followerReg, "chorus_backbeat_status_claims_total", "state", "executing"); got < 2 {
		t.Errorf("executing claims %v (one on the change, one per downbeat)", got)
	}
	if got := metric(t, followerReg, "chorus_backbeat_operations", "phase", "executing"); got != 1 {
		t.Errorf("executing operations %v", got)
	}
	if got := metric(t, followerReg, "chorus_backbeat_tempo_bpm"); got != 600 {
		t.Errorf("tempo %v", got)
	}
	if got := metric(t, followerReg, "chorus_backbeat_frame_drift_seconds"); got < 10 {
		t.Errorf("drift observations %v", got)
	}
	if got := metric(t, followerReg, "chorus_backbeat_degraded"); got != 0 {
		t.Errorf("degraded gauge %v after recovery", got)
	}
	for _, reg := range []*prometheus.Registry{adminReg, followerReg} {
		problems, err := testutil.GatherAndLint(reg)
		if err != nil || len(problems) > 0 {
			t.Errorf("metric lint: %v %v", problems, err)
		}
	}
}

func TestNodeConfigIsChecked(t *testing.T) {
	cfg := backbeat.DefaultConfig()
	if _, err := backbeat.New(cfg, nil); err == nil || !strings.Contains(err.Error(), "AgentID") {
		t.Errorf("no agent id: %v", err)
	}
	cfg.AgentID, cfg.TempoBPM, cfg.BarLength = "a", 0, 0
	_, err := backbeat.New(cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "TempoBPM") || !strings.Contains(err.Error(), "BarLength") {
		t.Errorf("bad tempo and bar: %v", err)
	}
}
