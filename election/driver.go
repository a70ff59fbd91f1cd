package election

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/gossip"
)

// ErrRefused is returned by Trigger when the machine refuses a manual
// election (one is running, or the stability window is not over).
var ErrRefused = errors.New("election refused")

// ErrNotRunning is returned by Trigger when Run is not running.
var ErrNotRunning = errors.New("election driver not running")

// Topic is what the driver needs of the election topic; *gossip.Topic
// joined on gossip.TopicElection is one.
type Topic interface {
	PublishBody(ctx context.Context, b gossip.Body, e gossip.Envelope) error
	Subscribe(handler func(e gossip.Envelope, from string)) (cancel func(), err error)
}

// DriverConfig holds what a Driver needs. Election.ID must be the node's
// peer id (gossip.Node.ID), the sender of what it publishes.
type DriverConfig struct {
	// Election configures the machine; Election.Tick is how often the
	// driver ticks it.
	Election Config
	// Topic is the joined election topic.
	Topic Topic
	// Peers returns how many peers the node is connected to
	// (len(gossip.Node.Peers())); nil counts none. See Machine.SetPeers.
	Peers func() int
	// Components returns this node's score components, asked at start and
	// every Heartbeat; nil means all zero (ties go by peer id).
	Components func() gossip.ScoreComponents
	// OnStartLeading is called when this node becomes admin of term; ctx
	// ends when Run returns. OnStopLeading(term) is always called before
	// the next OnStartLeading, and when Run returns while leading. Both
	// run on Run's goroutine, so they must return promptly; when
	// OnStopLeading returns, the admin's duties should have stopped.
	OnStartLeading func(ctx context.Context, term uint64)
	OnStopLeading  func(term uint64)
	// Fence, when set, observes every admin term the driver accepts, so
	// that actions of older terms are refused locally.
	Fence *Fence
	// TermFile, when set, keeps the highest admin term across restarts
	// (a decimal number), so terms stay monotonic fencing tokens even
	// when the whole cluster restarts.
	TermFile string
	// Metrics registers the election metrics; nil means none.
	Metrics prometheus.Registerer
	// Logger receives the driver's logs; nil discards them.
	Logger *slog.Logger
}

// Driver runs a Machine over the gossip election topic with real timers.
type Driver struct {
	cfg      DriverConfig
	m        *Machine // owned by Run's goroutine
	log      *slog.Logger
	metrics  *metrics
	status   atomic.Pointer[Status]
	running  atomic.Bool
	triggers chan chan error
	done     chan struct{}
	saved    uint64
	// Owned by Run's goroutine: when the current admin was last heard,
	// and when the previous one was, for the failover histogram.
	lastHeard time.Time
	lostAt    time.Time
	hadAdmin  bool
}

// NewDriver checks cfg, loads the saved term and builds the machine.
func NewDriver(cfg DriverConfig) (*Driver, error) {
	if cfg.Topic == nil {
		return nil, errors.New("election driver: Topic: missing")
	}
	saved, err := loadTerm(cfg.TermFile)
	if err != nil {
		return nil, err
	}
	cfg.Election.Term = max(cfg.Election.Term, saved)
	m, err := New(cfg.Election)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Driver{cfg: cfg, m: m, log: log, triggers: make(chan chan error), done: make(chan struct{}), saved: saved}
	if cfg.Fence != nil {
		cfg.Fence.Observe(cfg.Election.Term)
	}
	d.publishStatus(time.Now())
	if d.metrics, err = newMetrics(cfg.Metrics, d); err != nil {
		return nil, err
	}
	return d, nil
}

// Run subscribes to the topic and runs the election until ctx ends; a
// Driver runs once. It returns nil when ctx ends, an error when it cannot
// subscribe.
func (d *Driver) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("election driver: Run called twice")
	}
	defer close(d.done)
	in := make(chan Msg, 1024)
	stop := make(chan struct{})
	cancel, err := d.cfg.Topic.Subscribe(func(e gossip.Envelope, from string) {
		msg, ok := fromEnvelope(e, from)
		if !ok {
			return
		}
		select {
		case in <- msg:
		case <-stop:
		}
	})
	if err != nil {
		return fmt.Errorf("election: %w", err)
	}
	defer cancel()
	defer close(stop)

	tick := d.cfg.Election.Tick
	start := time.Now()
	var ticked int64
	scoreEvery := d.cfg.Election.ticks(d.cfg.Election.Heartbeat)
	d.refreshScore()
	t := time.NewTicker(tick)
	defer t.Stop()
	d.log.Info("election started", "node", d.cfg.Election.ID, "term", d.m.Term(), "heartbeat", d.cfg.Election.Heartbeat, "timeout", d.cfg.Election.Timeout)
	for {
		select {
		case <-ctx.Done():
			d.finish()
			return nil
		case now := <-t.C:
			// Messages that arrived first are handled first, so a slow
			// loop never times out an admin whose heartbeat is queued.
			d.drain(ctx, in)
			// Tick as often as time has passed: the machine's time keeps
			// up with the clock even when the ticker dropped ticks.
			for want := int64(now.Sub(start) / tick); ticked < want; ticked++ {
				if ticked%scoreEvery == 0 {
					d.refreshScore()
				}
				if d.cfg.Peers != nil {
					d.m.SetPeers(d.cfg.Peers())
				}
				d.handle(ctx, d.m.Tick())
			}
		case msg := <-in:
			d.step(ctx, msg)
		case reply := <-d.triggers:
			reply <- d.manual(ctx)
		}
		d.publishStatus(time.Now())
	}
}

func (d *Driver) drain(ctx context.Context, in <-chan Msg) {
	for {
		select {
		case msg := <-in:
			d.step(ctx, msg)
		default:
			return
		}
	}
}

func (d *Driver) step(ctx context.Context, msg Msg) {
	d.metrics.received(msg.Kind)
	d.log.Debug("election message received", "kind", msg.Kind.String(), "from", msg.From, "term", msg.Term, "candidate", msg.Candidate, "score", msg.Score)
	out := d.m.Step(msg)
	if msg.Kind.Wire() && msg.Kind != KindCandidacy && msg.Kind != KindVote {
		if s := d.m.Snapshot(); s.Admin == msg.Node {
			d.lastHeard = time.Now()
		}
	}
	d.handle(ctx, out)
}

func (d *Driver) manual(ctx context.Context) error {
	out := d.m.Step(Msg{Kind: KindManual})
	for _, o := range out {
		if o.Kind == KindRefused {
			return fmt.Errorf("%w: %s", ErrRefused, o.Reason)
		}
	}
	d.log.Info("manual election requested")
	d.handle(ctx, out)
	return nil
}

// Trigger asks for a manual election now. It returns an error wrapping
// ErrRefused when the machine refuses (an election is running, or the
// stability window is not over), ErrNotRunning when Run is not running.
func (d *Driver) Trigger(ctx context.Context) error {
	if !d.running.Load() {
		return ErrNotRunning
	}
	reply := make(chan error, 1)
	select {
	case d.triggers <- reply:
	case <-d.done:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// handle sends the wire messages and acts on the events.
func (d *Driver) handle(ctx context.Context, out []Msg) {
	for _, msg := range out {
		if msg.Kind.Wire() {
			d.send(ctx, msg)
			continue
		}
		d.metrics.event(msg)
		switch msg.Kind {
		case KindStartLeading:
			d.log.Info("leading", "term", msg.Term)
			d.saveTerm(msg.Term)
			if d.cfg.OnStartLeading != nil {
				d.cfg.OnStartLeading(ctx, msg.Term)
			}
		case KindStopLeading:
			// This node's own last sign of life as admin, for the failover
			// histogram.
			d.lastHeard = time.Now()
			d.log.Info("stopped leading", "term", msg.Term)
			if d.cfg.OnStopLeading != nil {
				d.cfg.OnStopLeading(msg.Term)
			}
		case KindAdminChanged:
			d.adminChanged(msg)
		case KindElectionStarted:
			d.log.Info("election", "term", msg.Term, "trigger", string(msg.Trigger))
		case KindSplitBrain:
			d.log.Warn("two admins seen", "other", msg.Node, "other_term", msg.Term, "term", d.m.Term())
		case KindQuorumLost:
			d.log.Warn("majority lost; stepping down", "term", msg.Term)
		}
	}
}

func (d *Driver) adminChanged(msg Msg) {
	now := time.Now()
	if msg.Node == "" {
		if d.hadAdmin && d.lostAt.IsZero() {
			d.lostAt = d.lastHeard
		}
		d.log.Info("no admin", "term", msg.Term)
		return
	}
	if !d.lostAt.IsZero() {
		d.metrics.observeFailover(now.Sub(d.lostAt).Seconds())
		d.lostAt = time.Time{}
	}
	d.hadAdmin = true
	d.lastHeard = now
	if d.cfg.Fence != nil {
		d.cfg.Fence.Observe(msg.Term)
	}
	d.saveTerm(msg.Term)
	d.log.Info("admin", "admin", msg.Node, "term", msg.Term)
}

func (d *Driver) send(ctx context.Context, msg Msg) {
	var b gossip.Body
	switch msg.Kind {
	case KindCandidacy:
		b = gossip.ElectionCandidacy{Term: msg.Term, NodeID: msg.Node, Score: msg.Score, Components: msg.Components,
			Trigger: string(msg.Trigger), Override: msg.Override}
	case KindVote:
		b = gossip.ElectionVote{Term: msg.Term, Voter: msg.Node, Candidate: msg.Candidate}
	case KindWinner:
		b = gossip.ElectionWinner{Term: msg.Term, Winner: msg.Node, Score: msg.Score, Votes: msg.Votes}
	case KindHeartbeat:
		b = gossip.AdminHeartbeat{Term: msg.Term, Admin: msg.Node, Seq: msg.Seq, Score: msg.Score, At: time.Now().UTC()}
	default:
		return
	}
	if err := d.cfg.Topic.PublishBody(ctx, b, gossip.Envelope{Priority: gossip.PriorityHigh}); err != nil {
		if ctx.Err() == nil {
			// Lost like any message: the machine resends what matters.
			d.log.Warn("election publish failed", "type", string(b.MessageType()), "err", err)
		}
		return
	}
	d.metrics.sent(msg.Kind)
	d.log.Debug("election message sent", "kind", msg.Kind.String(), "term", msg.Term, "candidate", msg.Candidate, "score", msg.Score)
}

// fromEnvelope turns a received election message into a Msg.
func fromEnvelope(e gossip.Envelope, from string) (Msg, bool) {
	switch e.Type {
	case gossip.TypeElectionCandidacy:
		var b gossip.ElectionCandidacy
		if e.DecodeData(&b) != nil {
			return Msg{}, false
		}
		return Msg{Kind: KindCandidacy, From: from, Term: b.Term, Node: b.NodeID, Score: b.Score, Components: b.Components,
			Trigger: Trigger(b.Trigger), Override: b.Override}, true
	case gossip.TypeElectionVote:
		var b gossip.ElectionVote
		if e.DecodeData(&b) != nil {
			return Msg{}, false
		}
		return Msg{Kind: KindVote, From: from, Term: b.Term, Node: b.Voter, Candidate: b.Candidate}, true
	case gossip.TypeElectionWinner:
		var b gossip.ElectionWinner
		if e.DecodeData(&b) != nil {
			return Msg{}, false
		}
		return Msg{Kind: KindWinner, From: from, Term: b.Term, Node: b.Winner, Score: b.Score, Votes: b.Votes}, true
	case gossip.TypeAdminHeartbeat:
		var b gossip.AdminHeartbeat
		if e.DecodeData(&b) != nil {
			return Msg{}, false
		}
		return Msg{Kind: KindHeartbeat, From: from, Term: b.Term, Node: b.Admin, Seq: b.Seq, Score: b.Score}, true
	}
	return Msg{}, false
}

func (d *Driver) refreshScore() {
	if d.cfg.Components != nil {
		d.m.SetComponents(d.cfg.Components())
	}
}

// finish ends leadership when Run ends.
func (d *Driver) finish() {
	if d.m.Leading() && d.cfg.OnStopLeading != nil {
		d.log.Info("stopped leading", "term", d.m.Term(), "reason", "shutdown")
		d.cfg.OnStopLeading(d.m.Term())
	}
	st := *d.status.Load()
	st.Leading = false
	if st.Admin == d.cfg.Election.ID {
		st.Admin = ""
	}
	st.Role = RoleFollower
	st.Running = false
	d.status.Store(&st)
}

// Status is a snapshot of the election as this node sees it; it is what
// GET /api/v1/election serves.
type Status struct {
	NodeID string `json:"node_id"`
	// Admin is the node this node follows ("" when it knows none).
	Admin string `json:"admin"`
	// Term is the admin's term, the fencing token of its actions.
	Term    uint64 `json:"term"`
	Leading bool   `json:"leading"`
	Role    Role   `json:"role"`
	Running bool   `json:"running"`
	// AdminScore is the admin's score from its heartbeats.
	AdminScore float64 `json:"admin_score,omitempty"`
	// LastHeartbeat is when the admin was last heard (when this node last
	// sent one, when it leads).
	LastHeartbeat *time.Time `json:"last_heartbeat,omitempty"`
	// StableUntil ends the stability window: no manual election before.
	StableUntil *time.Time `json:"stable_until,omitempty"`
	// Election is the election running now, if any.
	Election *ElectionStatus `json:"election,omitempty"`
	// LastTrigger is why the last election this node took part in started.
	LastTrigger Trigger `json:"last_trigger,omitempty"`
	// Members counts the nodes heard within the member TTL (or connected),
	// Live those heard within the timeout, this one included; Quorum is a
	// majority of Members.
	Members int `json:"members"`
	Live    int `json:"live"`
	Quorum  int `json:"quorum"`
	// Heartbeat and Timeout are the profile's, for display.
	Heartbeat string `json:"heartbeat"`
	Timeout   string `json:"timeout"`
	// Scores are this node's and the latest candidacy of every other node
	// heard within the member TTL, best first.
	Scores []CandidateScore `json:"scores"`
}

// ElectionStatus is a running election.
type ElectionStatus struct {
	Term       uint64  `json:"term"`
	Trigger    Trigger `json:"trigger"`
	Voted      string  `json:"voted,omitempty"`
	Candidates int     `json:"candidates"`
	Votes      int     `json:"votes"`
}

// CandidateScore is one node's score.
type CandidateScore struct {
	NodeID     string                 `json:"node_id"`
	Score      float64                `json:"score"`
	Components gossip.ScoreComponents `json:"components"`
	// Term is the election of the candidacy (0 for this node's own score).
	Term uint64 `json:"term,omitempty"`
	// Seen is when the candidacy was heard (now for this node).
	Seen  time.Time `json:"seen"`
	Self  bool      `json:"self,omitempty"`
	Admin bool      `json:"admin,omitempty"`
}

// Status returns the latest snapshot; safe from any goroutine.
func (d *Driver) Status() Status {
	s := *d.status.Load()
	s.Scores = append([]CandidateScore(nil), s.Scores...)
	return s
}

func (d *Driver) publishStatus(now time.Time) {
	snap := d.m.Snapshot()
	tick := d.cfg.Election.Tick
	s := &Status{NodeID: snap.ID, Admin: snap.Admin, Term: snap.Term, Leading: snap.Leading, Role: snap.Role, Running: d.running.Load(),
		AdminScore: snap.AdminScore, LastTrigger: snap.LastTrigger, Members: snap.Known, Live: snap.Live, Quorum: snap.Quorum,
		Heartbeat: d.cfg.Election.Heartbeat.String(), Timeout: d.cfg.Election.Timeout.String()}
	if snap.SinceHeartbeat >= 0 {
		at := now.Add(-time.Duration(snap.SinceHeartbeat) * tick).UTC()
		if !snap.Leading && !d.lastHeard.IsZero() {
			at = d.lastHeard.UTC()
		}
		s.LastHeartbeat = &at
		until := now.Add(time.Duration(snap.StableFor) * tick).UTC()
		s.StableUntil = &until
	}
	if e := snap.Election; e != nil {
		s.Election = &ElectionStatus{Term: e.Term, Trigger: e.Trigger, Voted: e.Voted, Candidates: e.Candidates, Votes: e.Votes}
	}
	s.Scores = append(s.Scores, CandidateScore{NodeID: snap.ID, Score: snap.Score, Components: snap.Components, Seen: now.UTC(),
		Self: true, Admin: snap.Leading})
	for _, c := range snap.Candidates {
		s.Scores = append(s.Scores, CandidateScore{NodeID: c.ID, Score: c.Score, Components: c.Components, Term: c.Term,
			Seen: now.Add(-time.Duration(c.Age) * tick).UTC(), Admin: c.ID == snap.Admin})
	}
	// Best first, as the machine ranks them.
	for i := 1; i < len(s.Scores); i++ {
		for j := i; j > 0 && better(s.Scores[j].NodeID, s.Scores[j].Score, s.Scores[j-1].NodeID, s.Scores[j-1].Score); j-- {
			s.Scores[j], s.Scores[j-1] = s.Scores[j-1], s.Scores[j]
		}
	}
	d.status.Store(s)
}

// loadTerm reads the saved term; a missing file is term 0.
func loadTerm(path string) (uint64, error) {
	if path == "" {
		return 0, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("election term file: %w", err)
	}
	term, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("election term file %s: %q is not a term: %w", path, strings.TrimSpace(string(b)), err)
	}
	return term, nil
}

// saveTerm keeps term on disk when it is higher than the saved one; a
// failure is logged (the term is still fenced in memory).
func (d *Driver) saveTerm(term uint64) {
	if d.cfg.TermFile == "" || term <= d.saved {
		return
	}
	if err := writeTerm(d.cfg.TermFile, term); err != nil {
		d.log.Warn("saving the election term failed", "file", d.cfg.TermFile, "err", err)
		return
	}
	d.saved = term
}

func writeTerm(path string, term uint64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(term, 10)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
