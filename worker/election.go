package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"chorus"
	"chorus/election"
	"chorus/gossip"
	"chorus/intake"
	"chorus/ops"
	"chorus/provider/board"
)

// Score horizons: a component reaches 1 at these.
const (
	uptimeHorizon     = time.Hour // an agent up for an hour is as settled as it gets
	capabilityHorizon = 8         // expertise plus capabilities listed
	experienceHorizon = 20        // sandbox executions finished since start
)

// electionConfig is the election profile with the command line's
// overrides; the id is filled in once the node exists.
func electionConfig(o options) (election.Config, error) {
	cfg, err := election.ProfileConfig(o.electionProfile)
	if err != nil {
		return cfg, fmt.Errorf("--election-profile: %w", err)
	}
	if o.electionHeartbeat < 0 || o.electionTimeout < 0 {
		return cfg, errors.New("--election-heartbeat and --election-timeout must not be negative")
	}
	if o.electionHeartbeat > 0 {
		// The start-up wait is a heartbeat plus the mesh's grafting time.
		cfg.StartupWait += o.electionHeartbeat - cfg.Heartbeat
		cfg.Heartbeat = o.electionHeartbeat
	}
	if o.electionTimeout > 0 {
		cfg.Timeout = o.electionTimeout
		cfg.MemberTTL = max(cfg.MemberTTL, 4*cfg.Timeout)
	}
	check := cfg
	check.ID = "check"
	if err := check.Validate(); err != nil {
		return cfg, fmt.Errorf("--election-heartbeat/--election-timeout: %w", err)
	}
	return cfg, nil
}

// elector is this worker's part in the admin election: the driver over the
// mesh's election topic, and the admin duties it starts and stops: task
// intake (the board sweeper and the issue trackers' pollers, and their
// webhooks accepted only while admin). The BACKBEAT pulse and the
// meta-coordination admin ask leading.
type elector struct {
	driver *election.Driver
	fence  *election.Fence
	logger *slog.Logger
	// Set before Run: what intake needs.
	temporal client.Client
	lister   func(term uint64) intake.Lister
	interval time.Duration
	// forges runs the issue trackers' pollers; nil without providers.
	forges func(ctx context.Context) error
	// score is the best score of a known agent for a task, for intake's
	// order; nil orders by priority and age only.
	score func(chorus.Task) float64

	// starter is the intake of the current term while admin, else nil.
	starter atomic.Pointer[intake.Starter]

	mu     sync.Mutex // guards the running duties
	cancel context.CancelFunc
	done   chan struct{}
}

// errNotAdmin refuses intake on a worker that is not the admin.
var errNotAdmin = errors.New("this worker is not the admin: intake runs on the admin (its pollers pick the task up)")

// leading reports whether this worker is the admin now.
func (e *elector) leading() bool { return e.starter.Load() != nil }

// startTask starts a task's workflow as the admin of the current term; it
// is the issue trackers' start function (webhooks and pollers).
func (e *elector) startTask(ctx context.Context, t chorus.Task) error {
	s := e.starter.Load()
	if s == nil {
		return errNotAdmin
	}
	_, err := s.Start(ctx, t)
	return err
}

// scoreSource is what this node's score is computed from.
type scoreSource struct {
	// agent is false for a node without an agent (--no-agent).
	agent bool
	// expertise and capabilities count what the agent lists.
	expertise, capabilities int
	maxTasks                int
	running                 *countingRunner
}

// newElector joins the election topic and builds the driver; Run starts
// it. fence is the worker's fence: it also guards the board API this
// worker serves.
func newElector(cfg election.Config, m *mesh, dataDir string, src scoreSource, fence *election.Fence, reg prometheus.Registerer, logger *slog.Logger) (*elector, error) {
	topic, err := m.node.Join(gossip.TopicElection)
	if err != nil {
		return nil, fmt.Errorf("election: %w", err)
	}
	cfg.ID = m.node.ID()
	e := &elector{fence: fence, logger: logger}
	started := time.Now()
	var d *election.Driver
	d, err = election.NewDriver(election.DriverConfig{
		Election: cfg,
		Topic:    topic,
		Peers:    func() int { return len(m.node.Peers()) },
		Components: func() gossip.ScoreComponents {
			return score(time.Since(started), src, len(m.node.Peers()), d.Status().Members)
		},
		OnStartLeading: e.startDuties,
		OnStopLeading:  e.stopDuties,
		Fence:          fence,
		TermFile:       filepath.Join(dataDir, "election", "term"),
		Metrics:        reg,
		Logger:         logger,
	})
	if err != nil {
		return nil, err
	}
	e.driver = d
	return e, nil
}

// score computes this node's five score components.
// score computes this node's five score components: uptime, what the
// agent can do, its free task slots, the share of the election's members
// it is connected to, and the executions it finished since it started.
func score(uptime time.Duration, src scoreSource, peers, members int) gossip.ScoreComponents {
	c := gossip.ScoreComponents{
		Uptime:    min(1, uptime.Seconds()/uptimeHorizon.Seconds()),
		Resources: 1, // a node without an agent runs no tasks
		Network:   1, // alone, it reaches everyone there is
	}
	if src.agent {
		c.Capabilities = min(1, float64(src.expertise+src.capabilities)/capabilityHorizon)
		if src.maxTasks > 0 {
			c.Resources = max(0, 1-float64(src.running.n.Load())/float64(src.maxTasks))
		}
	}
	if others := members - 1; others > 0 {
		c.Network = min(1, float64(peers)/float64(others))
	}
	c.Experience = min(1, float64(src.running.finished.Load())/experienceHorizon)
	return c
}

// Run runs the election until ctx ends; the duties have stopped when it
// returns.
func (e *elector) Run(ctx context.Context) error {
	err := e.driver.Run(ctx)
	e.stopDuties(0) // in case Run failed before it could stop them
	return err
}

// startDuties starts the admin duties of term.
func (e *elector) startDuties(ctx context.Context, term uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	e.cancel, e.done = cancel, done
	starter := &intake.Starter{Client: e.temporal, Term: term, Fence: e.fence}
	sw := &intake.Sweeper{
		Tasks:    e.lister(term),
		Starter:  starter,
		Interval: e.interval,
		Logger:   e.logger.With("component", "intake", "term", term),
		Score:    e.score,
	}
	e.starter.Store(starter)
	e.logger.Info("admin duties started", "term", term, "duties", "intake")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := sw.Run(ctx); err != nil {
			e.logger.Warn("intake stopped", "term", term, "err", err)
		}
	}()
	if e.forges != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.forges(ctx); err != nil && ctx.Err() == nil {
				e.logger.Warn("issue tracker intake stopped", "term", term, "err", err)
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
}

// stopDuties stops the admin duties and waits for them: a deposed admin
// has stopped acting when it returns.
func (e *elector) stopDuties(term uint64) {
	e.starter.Store(nil) // webhooks refuse at once, before the wait
	e.mu.Lock()
	cancel, done := e.cancel, e.done
	e.cancel, e.done = nil, nil
	e.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	e.logger.Info("admin duties stopped", "term", term)
}

// check is the non-critical election health check: without an admin the
// cluster takes in no tasks.
func (e *elector) check(context.Context) error {
	s := e.driver.Status()
	if s.Admin != "" {
		return nil
	}
	if s.Election != nil {
		return fmt.Errorf("no admin known: election for term %d running (%s)", s.Election.Term, s.Election.Trigger)
	}
	return fmt.Errorf("no admin known (%d of %d members live, quorum %d)", s.Live, s.Members, s.Quorum)
}

func (e *elector) register(health *ops.Health, mux *http.ServeMux) error {
	e.driver.Routes(mux)
	return health.Register(ops.Check{Name: "election", Interval: 5 * time.Second, Func: e.check})
}

// fencedLister checks the admin's term before every listing, so a deposed
// admin's sweep stops at once even before its context is cancelled.
type fencedLister struct {
	inner intake.Lister
	fence *election.Fence
	term  uint64
}

func (l fencedLister) ListOpen(ctx context.Context, limit int) ([]chorus.Task, error) {
	if err := l.fence.Check(l.term); err != nil {
		return nil, fmt.Errorf("intake: %w", err)
	}
	return l.inner.ListOpen(ctx, limit)
}

// remoteLister lists a remote board as the admin of term: its requests
// carry the term, which the board's worker fences (election.Fence.Guard).
func remoteLister(boardURL string, fence *election.Fence) func(term uint64) intake.Lister {
	return func(term uint64) intake.Lister {
		c := board.NewClient(boardURL, &http.Client{Timeout: 30 * time.Second, Transport: election.TermTransport{Term: term}})
		return fencedLister{inner: openLister{c.List}, fence: fence, term: term}
	}
}

// localLister lists the board this worker serves.
func localLister(b *board.Board, fence *election.Fence) func(term uint64) intake.Lister {
	return func(term uint64) intake.Lister {
		return fencedLister{inner: openLister{b.List}, fence: fence, term: term}
	}
}
