package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"chorus/election"
	"chorus/gossip"
)

// member is one node: its data dir outlives restarts, so a restarted node
// has the same identity and saved term.
type member struct {
	index   int
	dir     string
	capab   float64
	node    *gossip.Node
	driver  *election.Driver
	started time.Time
	cancel  context.CancelFunc
	done    chan error
}

// tracker follows leadership from the drivers' callbacks.
type tracker struct {
	mu      sync.Mutex
	leading map[int]uint64 // member index → term it leads
	dead    map[int]bool
	splits  []string
}

func (t *tracker) start(i int, term uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for other, ot := range t.leading {
		if other != i && !t.dead[other] {
			t.splits = append(t.splits, fmt.Sprintf("node %d started term %d while node %d led term %d", i, term, other, ot))
		}
	}
	t.leading[i] = term
}

func (t *tracker) stop(i int, term uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.leading[i] == term {
		delete(t.leading, i)
	}
}

func (t *tracker) setDead(i int, dead bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dead[i] = dead
	if dead {
		delete(t.leading, i)
	}
}

type bench struct {
	log     *slog.Logger
	verbose bool
	cfg     election.Config
	members []*member
	track   *tracker
}

func benchProfile(ctx context.Context, log *slog.Logger, o options, profile string, seed int64) (report, error) {
	cfg, err := election.ProfileConfig(profile)
	if err != nil {
		return report{}, err
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	root, err := os.MkdirTemp("", "failover-bench-")
	if err != nil {
		return report{}, err
	}
	defer os.RemoveAll(root)
	b := &bench{log: log.With("profile", profile), verbose: o.verbose, cfg: cfg, track: &tracker{leading: map[int]uint64{}, dead: map[int]bool{}}}
	defer b.closeAll()
	for i := range o.nodes {
		b.members = append(b.members, &member{index: i, dir: filepath.Join(root, fmt.Sprint(i)), capab: rng.Float64()})
	}
	for _, m := range b.members {
		if err := b.startNode(ctx, m); err != nil {
			return report{}, err
		}
	}
	for _, m := range b.members {
		if err := waitMesh(ctx, m.node, meshPeers(o.nodes), 30*time.Second); err != nil {
			return report{}, fmt.Errorf("mesh: %w", err)
		}
	}
	t0 := time.Now()
	for _, m := range b.members {
		if err := b.startDriver(ctx, m); err != nil {
			return report{}, err
		}
	}
	admin, err := b.waitAgree(ctx, b.members, -1, cfg.StartupWait+cfg.Timeout+30*time.Second)
	if err != nil {
		return report{}, fmt.Errorf("first election: %w", err)
	}
	rep := report{Nodes: o.nodes, Profile: profile, Rounds: o.rounds, HeartbeatMs: ms(cfg.Heartbeat), TimeoutMs: ms(cfg.Timeout),
		StartupMs: ms(time.Since(t0)), GoalMs: ms(goals[profile]), Seed: seed}
	b.log.Info("admin elected", "node", admin, "after", time.Since(t0).Round(time.Millisecond))

	for round := range o.rounds {
		// Kill at a random point of the heartbeat cycle.
		phase := time.Duration(rng.Int64N(int64(cfg.Heartbeat)))
		if err := sleep(ctx, phase); err != nil {
			return rep, err
		}
		victim := b.members[admin]
		survivors := slices.DeleteFunc(slices.Clone(b.members), func(m *member) bool { return m == victim })
		lastBeat := time.Time{}
		for _, s := range survivors {
			if hb := s.driver.Status().LastHeartbeat; hb != nil && hb.After(lastBeat) {
				lastBeat = *hb
			}
		}
		b.track.setDead(victim.index, true)
		killed := time.Now()
		b.kill(victim)
		next, err := b.waitAgree(ctx, survivors, victim.index, cfg.Timeout+30*time.Second)
		if err != nil {
			return rep, fmt.Errorf("round %d: %w", round+1, err)
		}
		took := time.Since(killed)
		rep.FailoverMs = append(rep.FailoverMs, ms(took))
		if !lastBeat.IsZero() {
			rep.SinceHeartbeatMs = append(rep.SinceHeartbeatMs, ms(time.Since(lastBeat)))
		}
		b.log.Info("failover", "round", round+1, "waited", phase.Round(time.Millisecond), "since_last_heartbeat", time.Since(lastBeat).Round(time.Millisecond), "killed", victim.index, "new_admin", next, "took", took.Round(time.Millisecond),
			"term", b.members[next].driver.Status().Term)
		// The killed node comes back as a follower.
		if err := b.startNode(ctx, victim); err != nil {
			return rep, err
		}
		// The cluster is whole again only when every node, not just the
		// restarted one, has it back in its mesh: until the others graft
		// it, it hears them late, through gossip. GossipSub sometimes keeps
		// a restarted peer out of a mesh for a while (see the README).
		meshStart := time.Now()
		for _, m := range b.members {
			if err := waitMesh(ctx, m.node, meshPeers(o.nodes), 3*time.Minute); err != nil {
				return rep, fmt.Errorf("mesh after the restart of node %d, at node %d: %w", victim.index, m.index, err)
			}
		}
		wait := time.Since(meshStart)
		rep.MeshWaitMsMax = max(rep.MeshWaitMsMax, ms(wait))
		b.log.Info("mesh whole again", "after", wait.Round(time.Millisecond))
		b.track.setDead(victim.index, false)
		if err := b.startDriver(ctx, victim); err != nil {
			return rep, err
		}
		if admin, err = b.waitAgree(ctx, b.members, -1, cfg.StartupWait+cfg.Timeout+30*time.Second); err != nil {
			return rep, fmt.Errorf("round %d, after the restart: %w", round+1, err)
		}
	}
	rep.FinalTerm = b.members[admin].driver.Status().Term
	sorted := slices.Sorted(slices.Values(rep.FailoverMs))
	rep.FailoverMsMax = sorted[len(sorted)-1]
	if n := len(sorted); n%2 == 1 {
		rep.FailoverMsP50 = sorted[n/2]
	} else {
		rep.FailoverMsP50 = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	b.track.mu.Lock()
	rep.SplitBrainEvents = len(b.track.splits)
	for _, s := range b.track.splits {
		b.log.Warn("split brain", "event", s)
	}
	b.track.mu.Unlock()
	rep.GoalMet = rep.FailoverMsMax <= rep.GoalMs && rep.SplitBrainEvents == 0
	return rep, nil
}

func (b *bench) startNode(ctx context.Context, m *member) error {
	cfg := gossip.DefaultConfig()
	cfg.DataDir = m.dir
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.MDNS = false
	cfg.DHTMode = gossip.DHTOff
	n, err := gossip.New(ctx, cfg)
	if err != nil {
		return err
	}
	if _, err := n.Join(gossip.TopicElection); err != nil {
		return errors.Join(err, n.Close())
	}
	for _, o := range b.members {
		if o != m && o.node != nil {
			if err := n.Connect(ctx, o.node.Addrs()[0]); err != nil {
				return errors.Join(err, n.Close())
			}
		}
	}
	m.node = n
	m.started = time.Now()
	return nil
}

func (b *bench) startDriver(ctx context.Context, m *member) error {
	topic, err := m.node.Join(gossip.TopicElection)
	if err != nil {
		return err
	}
	cfg := b.cfg
	cfg.ID = m.node.ID()
	logger := slog.New(slog.DiscardHandler)
	if b.verbose {
		logger = b.log.With("node", m.index)
	}
	node := m.node
	d, err := election.NewDriver(election.DriverConfig{
		Election: cfg,
		Topic:    topic,
		Peers:    func() int { return len(node.Peers()) },
		// Like the worker: uptime (one hour to reach 1), and fixed
		// capabilities per node; resources and network full.
		Components: func() gossip.ScoreComponents {
			return gossip.ScoreComponents{Uptime: min(1, time.Since(m.started).Hours()), Capabilities: m.capab, Resources: 1, Network: 1}
		},
		OnStartLeading: func(_ context.Context, term uint64) { b.track.start(m.index, term) },
		OnStopLeading:  func(term uint64) { b.track.stop(m.index, term) },
		TermFile:       filepath.Join(m.dir, "election", "term"),
		Logger:         logger,
	})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	m.driver, m.cancel, m.done = d, cancel, make(chan error, 1)
	go func() { m.done <- d.Run(rctx) }()
	return nil
}

// kill stops the node at once: its driver sends nothing more, its node
// closes.
func (b *bench) kill(m *member) {
	if m.driver != nil {
		m.cancel()
		<-m.done
	}
	m.node.Close()
	m.node, m.driver = nil, nil
}

func (b *bench) closeAll() {
	for _, m := range b.members {
		if m.node != nil {
			b.kill(m)
		}
	}
}

// waitAgree polls every millisecond until every member in ms reports the
// same admin, other than member not, and that admin leads; it returns the
// admin's index.
func (b *bench) waitAgree(ctx context.Context, ms []*member, not int, within time.Duration) (int, error) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if i, ok := agreed(ms, not); ok {
			return i, nil
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			return 0, err
		}
	}
	for _, m := range ms {
		s := m.driver.Status()
		b.log.Warn("no agreement", "node", m.index, "role", s.Role, "admin", s.Admin, "term", s.Term)
	}
	return 0, fmt.Errorf("no agreement on an admin within %s", within)
}

func agreed(ms []*member, not int) (int, bool) {
	admin := ""
	for _, m := range ms {
		a := m.driver.Status().Admin
		if a == "" || (admin != "" && a != admin) {
			return 0, false
		}
		admin = a
	}
	for _, m := range ms {
		if m.node.ID() == admin && m.index != not && m.driver.Status().Leading {
			return m.index, true
		}
	}
	return 0, false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// meshPeers is how many mesh peers make a node's mesh whole: every other
// node, up to GossipSub's low water mark Dlo (5), above which it grafts no
// more by itself. (A publisher's own messages still go to every subscribed
// peer: flood publishing.)
func meshPeers(nodes int) int { return min(nodes-1, 5) }

// waitMesh waits (within at most) until node has peers mesh peers on the
// election topic: what is published before is lost.
func waitMesh(ctx context.Context, node *gossip.Node, peers int, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	return node.WaitMesh(ctx, gossip.TopicElection, peers)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
