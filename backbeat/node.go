package backbeat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chorus"
	"chorus/gossip"
)

// Topic is where a Node speaks: gossip.TopicBackbeat joined on the node's
// gossip.Node (*gossip.Topic).
type Topic interface {
	PublishBody(ctx context.Context, b gossip.Body, e gossip.Envelope) error
	Subscribe(handler func(e gossip.Envelope, from string)) (cancel func(), err error)
}

// Config configures a Node.
type Config struct {
	// ClusterID names the cluster in frames and reports; frames and
	// reports of other clusters are ignored.
	ClusterID string
	// AgentID signs this node's StatusClaims.
	AgentID string
	// TempoBPM is the tempo of the pulse this node publishes as admin,
	// and of its local clock before it hears one.
	TempoBPM float64
	// BarLength is the number of beats in a bar.
	BarLength int
	// MissedBeats is how many frames in a row may be missing before the
	// node degrades to local timing.
	MissedBeats int
	// Budget is the beat budget of an operation: the beats it is expected
	// to need from claim to done.
	Budget int
	// IsAdmin tells whether this node is the cluster's admin and so
	// publishes the pulse and the bar reports. It is asked on every beat
	// and at least every AdminPoll; nil means never.
	IsAdmin func() bool
	// AdminPoll bounds how long a change of IsAdmin may go unnoticed.
	AdminPoll time.Duration
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
	// Metrics, when set, receives the node's metrics (category backbeat).
	Metrics prometheus.Registerer
}

// DefaultConfig returns the production node of cluster "chorus"; AgentID
// is left empty because it has no default.
func DefaultConfig() Config {
	f := DefaultFollowerConfig()
	return Config{
		// The worker's default --cluster-id.
		ClusterID: "chorus",
		// SPEC section 12: 2 BPM in production, 120 beats a bar.
		TempoBPM:  DefaultTempoBPM,
		BarLength: DefaultBarLength,
		// See DefaultFollowerConfig.
		MissedBeats: f.MissedBeats,
		// One bar (an hour at 2 BPM): longer than the default execution
		// timeout of 10 minutes plus any queueing a healthy cluster sees.
		Budget: DefaultBarLength,
		// An election result shows within a second.
		AdminPoll: time.Second,
	}
}

// Validate names the first unusable field.
func (c Config) Validate() error {
	var errs []error
	if c.ClusterID == "" {
		errs = append(errs, errors.New("ClusterID: missing"))
	}
	if c.AgentID == "" {
		errs = append(errs, errors.New("AgentID: missing"))
	}
	if err := checkTempo(c.TempoBPM, "TempoBPM"); err != nil {
		errs = append(errs, err)
	}
	if c.BarLength < 1 {
		errs = append(errs, fmt.Errorf("BarLength: %d must be at least 1", c.BarLength))
	}
	if c.MissedBeats < 1 {
		errs = append(errs, fmt.Errorf("MissedBeats: %d must be at least 1", c.MissedBeats))
	}
	if c.Budget < 1 {
		errs = append(errs, fmt.Errorf("Budget: %d must be at least 1", c.Budget))
	}
	if c.AdminPoll <= 0 {
		errs = append(errs, fmt.Errorf("AdminPoll: %v must be positive", c.AdminPoll))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("backbeat config: %w: %w", chorus.ErrInvalid, err)
	}
	return nil
}

// inboxSize bounds received messages waiting for the node's goroutine; a
// full inbox drops (counted), which the follower sees as a lost frame.
const inboxSize = 256

type inbound struct {
	e    gossip.Envelope
	from string
	at   time.Time
}

// Node drives the cores over gossip: it publishes the pulse and the bar
// reports while admin, keeps the beat clock locked to the frames it
// receives, runs the tracker's beats and publishes its StatusClaims. Build
// it with New and run it with Run; its other methods are safe for
// concurrent use from any goroutine, before, during and after Run.
type Node struct {
	cfg     Config
	topic   Topic
	log     *slog.Logger
	metrics *metrics
	hlc     HLC
	inbox   chan inbound
	kick    chan struct{}

	mu       sync.Mutex
	follower *Follower
	tracker  *Tracker
	pulse    *Pulse      // non-nil while admin
	agg      *Aggregator // non-nil while admin
	report   *gossip.BarReport
	pending  []gossip.Body // claims of lifecycle events, not published yet
	window   float64       // largest-magnitude drift since the latest claim batch
	state    State
}

// New returns a node speaking on topic. Its beat clock starts now, from
// beat 0, on local timing.
func New(cfg Config, topic Topic) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if topic == nil {
		return nil, errors.New("backbeat: nil topic")
	}
	fcfg := DefaultFollowerConfig()
	fcfg.TempoBPM, fcfg.BarLength, fcfg.MissedBeats = cfg.TempoBPM, cfg.BarLength, cfg.MissedBeats
	f, err := NewFollower(fcfg, time.Now())
	if err != nil {
		return nil, err
	}
	tr, err := NewTracker(TrackerConfig{AgentID: cfg.AgentID, BarLength: cfg.BarLength, Budget: cfg.Budget, Abandon: AbandonBudgets})
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, topic: topic, log: log, inbox: make(chan inbound, inboxSize), kick: make(chan struct{}, 1),
		follower: f, tracker: tr, state: StateWaiting}
	if n.metrics, err = newMetrics(cfg.Metrics, n); err != nil {
		return nil, err
	}
	return n, nil
}

// Run subscribes to the topic and drives the node until ctx ends.
func (n *Node) Run(ctx context.Context) error {
	cancel, err := n.topic.Subscribe(n.receive)
	if err != nil {
		return fmt.Errorf("backbeat: %w", err)
	}
	defer cancel()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		out, wake := n.tick(time.Now())
		n.publish(ctx, out)
		timer.Reset(time.Until(wake))
		select {
		case <-ctx.Done():
			n.mu.Lock()
			n.pulse, n.agg = nil, nil
			n.mu.Unlock()
			return nil
		case <-timer.C:
		case <-n.kick:
		case in := <-n.inbox:
			n.handle(in)
		}
	}
}

// receive runs on the subscription's goroutine: it only stamps the arrival
// time and hands the message over.
func (n *Node) receive(e gossip.Envelope, from string) {
	select {
	case n.inbox <- inbound{e: e, from: from, at: time.Now()}:
	default:
		n.metrics.dropped.Inc()
	}
}

// tick advances the pulse (when admin), the beat clock and the tracker to
// now, and returns what to publish and when to tick again.
func (n *Node) tick(now time.Time) ([]gossip.Body, time.Time) {
	admin := n.cfg.IsAdmin != nil && n.cfg.IsAdmin()
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []gossip.Body
	switch {
	case admin && n.pulse == nil:
		n.startPulse(now)
	case !admin && n.pulse != nil:
		n.pulse, n.agg = nil, nil
		n.log.Info("backbeat pulse stopped: no longer admin")
	}
	if n.pulse != nil {
		before := n.pulse.Tempo()
		if fr, ok := n.pulse.Beat(now); ok {
			out = append(out, fr)
			n.observe(fr, now)
			if bar := BarOf(fr.BeatIndex, n.cfg.BarLength); bar != n.agg.Bar() {
				r := n.agg.Cut(bar, before)
				n.report = &r
				out = append(out, r)
			}
		}
	}
	st := n.follower.Status(now)
	if st.State != n.state {
		switch st.State {
		case StateDegraded:
			n.log.Warn("backbeat pulse lost; using local timing", "silent_beats", st.SilentBeats, "beat", st.BeatIndex, "tempo_bpm", st.TempoBPM)
		case StateLocked:
			n.log.Info("backbeat locked to the pulse", "beat", st.BeatIndex, "tempo_bpm", st.TempoBPM)
		}
		n.state = st.State
	}
	forgotten := n.tracker.Forgotten()
	out = append(out, n.stamp(n.tracker.Beat(st.BeatIndex), now)...)
	if f := n.tracker.Forgotten() - forgotten; f > 0 {
		n.metrics.forgotten.Add(float64(f))
		n.log.Warn("backbeat forgot operations whose end was never heard", "count", f, "after_budgets", AbandonBudgets)
	}
	out = append(out, n.pending...)
	n.pending = nil

	wake := st.NextBeatAt
	if n.pulse != nil && n.pulse.NextAt().Before(wake) {
		wake = n.pulse.NextAt()
	}
	if d := n.follower.DegradesAt(); st.State != StateDegraded && d.After(now) && d.Before(wake) {
		wake = d
	}
	if poll := now.Add(n.cfg.AdminPoll); poll.Before(wake) {
		wake = poll
	}
	return out, wake
}

// startPulse makes this node the pulse. It continues the timeline its
// follower holds (the next beat where it expects it, at the tempo heard)
// so the cluster's beat index runs on across a change of admin; a node
// that never heard a pulse starts at once, at the beat its own clock has
// counted since the start (0 for an admin from the start).
func (n *Node) startPulse(now time.Time) {
	st := n.follower.Status(now)
	start := PulseStart{Beat: st.BeatIndex, At: now}
	if n.follower.Heard() {
		start = PulseStart{Beat: st.BeatIndex + 1, At: st.NextBeatAt, TempoBPM: st.TempoBPM}
	}
	pcfg := PulseConfig{ClusterID: n.cfg.ClusterID, TempoBPM: n.cfg.TempoBPM, BarLength: n.cfg.BarLength}
	p, err := NewPulse(pcfg, start, &n.hlc)
	if err != nil {
		// Only a tempo heard from another admin outside the limits gets
		// here; start afresh at our own.
		start.TempoBPM = 0
		if p, err = NewPulse(pcfg, start, &n.hlc); err != nil {
			n.log.Error("backbeat pulse not started", "error", err)
			return
		}
	}
	agg, err := NewAggregator(n.cfg.ClusterID, n.cfg.BarLength, BarOf(start.Beat, n.cfg.BarLength))
	if err != nil {
		n.log.Error("backbeat pulse not started", "error", err)
		return
	}
	n.pulse, n.agg = p, agg
	n.log.Info("backbeat pulse started", "beat", start.Beat, "tempo_bpm", p.Tempo(), "target_bpm", p.Target(), "bar", n.cfg.BarLength)
}

// observe feeds a frame to the follower. Called with mu held.
func (n *Node) observe(fr gossip.BeatFrame, at time.Time) {
	o := n.follower.Observe(fr, at)
	if o.Duplicate {
		return
	}
	n.metrics.framesMissed.Add(float64(o.Missed))
	n.metrics.drift.Observe(math.Abs(o.DriftMS) / 1000)
	if o.Relocked {
		n.metrics.relocks.Inc()
	}
	if math.Abs(o.DriftMS) > math.Abs(n.window) {
		n.window = o.DriftMS
	}
	if o.Recovered {
		n.log.Info("backbeat pulse regained", "beat", fr.BeatIndex, "missed", o.Missed)
	}
}

// handle takes one received message.
func (n *Node) handle(in inbound) {
	switch in.e.Type {
	case gossip.TypeBeatFrame:
		var fr gossip.BeatFrame
		if in.e.DecodeData(&fr) != nil || fr.ClusterID != n.cfg.ClusterID {
			return
		}
		n.merge(fr.HLC, in.at)
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.pulse != nil {
			// Two admins: ours is the pulse this node follows.
			n.log.Debug("ignored a beat frame of another admin", "from", in.from, "beat", fr.BeatIndex)
			return
		}
		n.metrics.framesReceived.Inc()
		n.observe(fr, in.at)
	case gossip.TypeStatusClaim:
		var c gossip.StatusClaim
		if in.e.DecodeData(&c) != nil {
			return
		}
		n.merge(c.HLC, in.at)
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.agg != nil {
			n.agg.Add(c)
			n.metrics.claimsReceived.Inc()
		}
	case gossip.TypeBarReport:
		var r gossip.BarReport
		if in.e.DecodeData(&r) != nil || r.ClusterID != n.cfg.ClusterID {
			return
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.pulse == nil {
			n.report = &r
			n.metrics.reportsReceived.Inc()
		}
	}
}

// merge advances the node's HLC past a received timestamp.
func (n *Node) merge(hlc string, at time.Time) {
	if ts, err := ParseTimestamp(hlc); err == nil {
		n.hlc.Update(ts, at)
	}
}

// stamp completes a batch of claims with hlc and tempo_drift_ms (the
// largest-magnitude drift measured since the previous batch), counts them
// and, as admin, takes them into the open bar. Called with mu held.
func (n *Node) stamp(claims []gossip.StatusClaim, now time.Time) []gossip.Body {
	if len(claims) == 0 {
		return nil
	}
	out := make([]gossip.Body, 0, len(claims))
	for _, c := range claims {
		c.HLC = n.hlc.Now(now).String()
		c.DriftMS = n.window
		n.metrics.claims.WithLabelValues(c.State).Inc()
		if n.agg != nil {
			n.agg.Add(c)
		}
		out = append(out, c)
	}
	n.window = 0
	return out
}

// publish sends what tick produced; a failure is logged and the next beat
// goes on (followers count a lost frame as missed).
func (n *Node) publish(ctx context.Context, out []gossip.Body) {
	for _, b := range out {
		if err := n.topic.PublishBody(ctx, b, gossip.Envelope{}); err != nil {
			if ctx.Err() == nil {
				n.log.Warn("backbeat publish failed", "type", string(b.MessageType()), "error", err)
			}
			continue
		}
		switch b.(type) {
		case gossip.BeatFrame:
			n.metrics.framesPublished.Inc()
		case gossip.BarReport:
			n.metrics.reportsPublished.Inc()
		}
	}
}

// queue adds the claims of a lifecycle event for the next tick.
func (n *Node) queue(claims []gossip.StatusClaim) {
	if len(claims) == 0 {
		return
	}
	n.pending = append(n.pending, n.stamp(claims, time.Now())...)
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Advance moves an operation to phase p (see Tracker.Advance) and emits
// its claim.
func (n *Node) Advance(key string, p Phase, agentID string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	claims, err := n.tracker.Advance(key, p, agentID)
	if err != nil {
		return err
	}
	n.queue(claims)
	return nil
}

// Finish ends an operation as completed or failed and emits its claim.
func (n *Node) Finish(key, agentID string, failed bool, notes string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queue(n.tracker.Finish(key, agentID, failed, notes))
}

// SetBlocked marks an operation blocked or not (see Tracker.SetBlocked).
func (n *Node) SetBlocked(key string, blocked bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queue(n.tracker.SetBlocked(key, blocked))
}

// SetHelping marks an operation as helping another agent or not.
func (n *Node) SetHelping(key string, helping bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queue(n.tracker.SetHelping(key, helping))
}

// Drop forgets an operation without a claim (see Tracker.Drop).
func (n *Node) Drop(key string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.tracker.Drop(key)
}

// Snapshot is the node's BACKBEAT state, as served on GET /api/v1/backbeat.
type Snapshot struct {
	ClusterID string `json:"cluster_id"`
	AgentID   string `json:"agent_id"`
	// Admin is set while this node publishes the pulse.
	Admin bool `json:"admin"`
	// State is waiting, locked or degraded; Locked and Degraded repeat it
	// as flags.
	State       State     `json:"state"`
	Locked      bool      `json:"locked"`
	Degraded    bool      `json:"degraded"`
	BeatIndex   int64     `json:"beat_index"`
	Bar         int64     `json:"bar"`
	Phase       string    `json:"phase"`
	TempoBPM    float64   `json:"tempo_bpm"`
	DriftMS     float64   `json:"tempo_drift_ms"`
	SilentBeats int64     `json:"silent_beats"`
	NextBeatAt  time.Time `json:"next_beat_at"`
	// FramesReceived counts the frames the beat clock took (as admin, its
	// own); FramesMissed the gaps; Relocks the new timelines.
	FramesReceived int64 `json:"frames_received"`
	FramesMissed   int64 `json:"frames_missed"`
	Relocks        int64 `json:"relocks"`
	// Operations are the tracked operations, sorted by task key.
	Operations []Operation `json:"operations"`
	// LastBarReport is the latest report published (as admin) or heard.
	LastBarReport *gossip.BarReport `json:"last_bar_report"`
}

// Snapshot returns the node's state now.
func (n *Node) Snapshot() Snapshot {
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.follower.Status(now)
	s := Snapshot{
		ClusterID: n.cfg.ClusterID, AgentID: n.cfg.AgentID, Admin: n.pulse != nil,
		State: st.State, Locked: st.State == StateLocked, Degraded: st.State == StateDegraded,
		BeatIndex: st.BeatIndex, Bar: BarOf(st.BeatIndex, n.cfg.BarLength), Phase: PhaseOf(st.BeatIndex, n.cfg.BarLength),
		TempoBPM: st.TempoBPM, DriftMS: st.DriftMS, SilentBeats: st.SilentBeats, NextBeatAt: st.NextBeatAt.UTC(),
		FramesReceived: st.Received, FramesMissed: st.Missed, Relocks: st.Relocks,
		Operations: n.tracker.Operations(),
	}
	if n.report != nil {
		r := *n.report
		s.LastBarReport = &r
	}
	return s
}

// Check is the health check "backbeat": an error while the node runs on
// local timing because the pulse is lost.
func (n *Node) Check(context.Context) error {
	n.mu.Lock()
	st := n.follower.Status(time.Now())
	n.mu.Unlock()
	if st.State == StateDegraded {
		return fmt.Errorf("no pulse for %d beats; using local timing", st.SilentBeats)
	}
	return nil
}
